import CShims
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// A bundle's root-owned rootfs run in place, through an idmapped mount, when that is safe
/// (OCIBundle explains when and why). The mount lives in the container's state directory, so
/// every path that removes that directory (exit, delete, Ctrl-C, `clab gc` after kill -9)
/// unmounts it first (Container.remove, Detached.releaseHostResources), and a recursive delete
/// never walks into it (both refuse while a mount is left below the directory).
enum IdmappedRoot {
    // <fcntl.h> defines these only under _GNU_SOURCE, which Swift's Glibc does not see.
    static let atRecursive: UInt32 = 0x8000
    static let atEmptyPath: UInt32 = 0x1000

    /// Why `rootfs` (real path, inside the bundle) may not run in place, or nil and the directory
    /// that guards it: the rootfs must belong to host root, and a strict ancestor of it (outside
    /// the mount, so the container cannot chmod it) must be a root-owned directory that neither
    /// group nor others may search (no x in its group bits also caps every ACL entry).
    static func guardDirectory(of rootfs: String) -> (refusal: String?, guardDir: String?) {
        var st = stat()
        guard lstat(rootfs, &st) == 0 else { return ("cannot stat \(rootfs)", nil) }
        guard st.st_uid == 0 else { return ("it is owned by uid \(st.st_uid), not root", nil) }
        var dir = rootfs
        while dir != "/" && !dir.isEmpty {
            dir = Path.dirname(dir)
            var d = stat()
            guard lstat(dir, &d) == 0, d.st_mode & S_IFMT == S_IFDIR else { continue }
            if d.st_uid == 0 && d.st_mode & 0o011 == 0 { return (nil, dir) }
        }
        return (
            "no directory above it is closed to all but root (mode 0700), so other users could reach what the container leaves there",
            nil
        )
    }

    /// `source` mounted at `target` (made here), every id shifted by `mapping` (on disk 0 is
    /// container root: host uid `mapping.host`, and what container root writes is owned by 0
    /// on disk), nodev, nosuid. Throws SyscallError (its errno says whether the filesystem supports it).
    /// The rootfs is pinned by an fd first, and the tree cloned from that fd once the guard was
    /// checked and the path still names the same directory. Returns nil when it was mounted, or
    /// why it may not run in place (nothing mounted then).
    static func mount(_ source: String, at target: String, mapping: IDMapping) throws -> String? {
        let pinned = open(source, Int32(CLAB_O_PATH) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard pinned >= 0 else { throw SyscallError("open \(source)") }
        defer { close(pinned) }
        let (refusal, _) = guardDirectory(of: source)
        if let refusal { return refusal }
        var held = stat()
        var named = stat()
        guard fstat(pinned, &held) == 0, stat(source, &named) == 0, held.st_dev == named.st_dev,
            held.st_ino == named.st_ino, held.st_uid == 0
        else { return "\(source) changed while it was checked" }
        let userns = try userNamespace(mapping)
        defer { close(userns) }
        let tree = open_tree(
            pinned, "", UInt32(OPEN_TREE_CLONE) | UInt32(OPEN_TREE_CLOEXEC) | atRecursive | atEmptyPath)
        guard tree >= 0 else { throw SyscallError("open_tree \(source)") }
        defer { close(tree) }
        var attr = mount_attr()
        // nosuid too: a setuid-root file container root leaves is root's on disk, and an fd of it
        // passed over a socket to a host user (execveat) would skip the guard directory.
        attr.attr_set = UInt64(MOUNT_ATTR_IDMAP) | UInt64(MOUNT_ATTR_NODEV) | UInt64(MOUNT_ATTR_NOSUID)
        attr.userns_fd = UInt64(userns)
        guard mount_setattr(tree, "", atEmptyPath | atRecursive, &attr, MemoryLayout<mount_attr>.size) == 0 else {
            throw SyscallError("mount_setattr MOUNT_ATTR_IDMAP \(source)")
        }
        guard mkdir(target, 0o755) == 0 || errno == EEXIST else { throw SyscallError("mkdir \(target)") }
        guard move_mount(tree, "", AT_FDCWD, target, UInt32(MOVE_MOUNT_F_EMPTY_PATH)) == 0 else {
            throw SyscallError("move_mount \(target)")
        }
        return nil
    }

    /// A user namespace with `mapping` for uids and gids, as an fd: made by a short-lived child
    /// (clab's spawn, which waits for "go" before anything else) whose maps are written here;
    /// the child is gone before this returns, the namespace stays alive through the fd.
    static func userNamespace(_ mapping: IDMapping) throws -> Int32 {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw SyscallError("socketpair")
        }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer {
            close(pair[0])
            if null >= 0 { close(null) }
        }
        let (pid, pidfd) = Container.spawnInit(
            "/bin/true", arguments: [], flags: UInt64(CLONE_NEWUSER), syncFD: pair[1], stdio: (null, null, null),
            becomeRoot: false, ctty: -1, joinNetns: -1)
        close(pair[1])
        guard pid > 0 else { throw SyscallError("clone3 CLONE_NEWUSER", errno: -pid) }
        defer {
            // EOF on its sync socket (closed above and by the defer before): it exits unexecuted.
            kill(pid, SIGKILL)
            _ = ExitStatus.reap(pid)
            if pidfd >= 0 { close(pidfd) }
        }
        try FS.write(mapping.mapLine, to: "/proc/\(pid)/uid_map")
        try FS.write(mapping.mapLine, to: "/proc/\(pid)/gid_map")
        let fd = open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SyscallError("open /proc/\(pid)/ns/user") }
        return fd
    }
}
