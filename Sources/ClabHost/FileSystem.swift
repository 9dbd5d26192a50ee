import CShims
import ClabSys
import FoundationEssentials
import Glibc

extension FS {
    /// The whole file as text (nil: it cannot be opened or read). read(2) until EOF, as
    /// FileManager.contents(atPath:) did (it opened with O_NONBLOCK too), without the attribute
    /// dictionary it builds, which costs a runtime type lookup on every container start.
    public static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Everything `fd` reads until EOF, or nil on a read error or past `limit` bytes (a file a
    /// caller may not trust to be small: config.json, a --process file, credentials).
    public static func readAll(_ fd: Int32, limit: Int) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { return out }
            out += buffer[0..<n]
            if out.count > limit {
                errno = EFBIG
                return nil
            }
        }
    }

    /// Every path below `root` (not `root` itself), without following symlinks. `root` itself is
    /// the caller's and may be reached through a symlink; below it every directory is opened from
    /// its parent's fd with O_NOFOLLOW, so a symlink that replaced a directory (an upper layer's
    /// `etc -> /root`) is listed, never entered.
    public static func walk(_ root: String) -> [String] {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        var result: [String] = []
        walk(fd, prefix: root, into: &result)
        return result
    }

    /// Every path below `base + "/" + rel`, reaching that directory without following any
    /// symlink on the way (RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH): a layer's `etc -> /root` does
    /// not make `etc/x` lead to the host's /root/x. Empty when it is not such a directory.
    public static func walk(_ base: String, beneath rel: String) -> [String] {
        let fd = openBeneath(base, rel, flags: O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return [] }
        var result: [String] = []
        walk(fd, prefix: base + "/" + rel.drop { $0 == "/" }, into: &result)
        return result
    }

    /// Takes ownership of `dirFD`.
    private static func walk(_ dirFD: Int32, prefix: String, into result: inout [String]) {
        guard let dir = fdopendir(dirFD) else {
            close(dirFD)
            return
        }
        defer { closedir(dir) }
        var subdirs: [String] = []
        for (name, type) in entries(dir) {
            result.append(prefix + "/" + name)
            var st = stat()
            if type == UInt8(DT_DIR)
                || (type == UInt8(DT_UNKNOWN) && fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) == 0
                    && (st.st_mode & S_IFMT) == S_IFDIR)
            {
                subdirs.append(name)
            }
        }
        for name in subdirs {
            let sub = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if sub >= 0 { walk(sub, prefix: prefix + "/" + name, into: &result) }
        }
    }

    /// A directory's names (without . and ..) and their d_type.
    private static func entries(_ dir: OpaquePointer) -> [(String, UInt8)] {
        var out: [(String, UInt8)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { cString($0.bindMemory(to: CChar.self)) }
            if name != "." && name != ".." { out.append((name, entry.pointee.d_type)) }
        }
        return out
    }

    /// openat2 of `rel` below `base`, following no symlink at all, the last component included
    /// (with O_PATH it then names the symlink itself). -1 with errno when it cannot.
    public static func openBeneath(_ base: String, _ rel: String, flags: Int32) -> Int32 {
        let baseFD = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard baseFD >= 0 else { return -1 }
        defer { close(baseFD) }
        let path = rel.drop { $0 == "/" }
        return clab_openat2(
            baseFD, path.isEmpty ? "." : String(path), flags | O_NOFOLLOW | O_CLOEXEC,
            UInt64(CLAB_RESOLVE_NO_SYMLINKS | CLAB_RESOLVE_BENEATH))
    }

    /// lstat of `rel` below `base`, reached through real directories only (see openBeneath).
    public static func lstat(_ base: String, beneath rel: String) -> stat? {
        let fd = openBeneath(base, rel, flags: Int32(CLAB_O_PATH))
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        return fstat(fd, &st) == 0 ? st : nil
    }

    /// An fd of `path` inside another root, resolved as a process with that root resolves it:
    /// absolute symlinks and ".." stay inside (openat2 RESOLVE_IN_ROOT). The plain path
    /// "/proc/PID/root/etc/x" would follow an absolute symlink `etc -> /etc` from the host's root.
    /// -1 with errno when it cannot.
    public static func openInRoot(_ root: String, _ path: String, flags: Int32) -> Int32 {
        let rootFD = open(root, Int32(CLAB_O_PATH) | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { return -1 }
        defer { close(rootFD) }
        return clab_openat2(rootFD, path, flags | O_CLOEXEC, UInt64(CLAB_RESOLVE_IN_ROOT))
    }

    /// Whether `path` exists inside `root` (see openInRoot); a dangling symlink does not.
    public static func exists(_ path: String, inRoot root: String) -> Bool {
        let fd = openInRoot(root, path, flags: Int32(CLAB_O_PATH))
        if fd >= 0 { close(fd) }
        return fd >= 0
    }

    /// lstat of `path` inside `root` (see openInRoot): a symlink at the end is itself.
    public static func lstat(_ path: String, inRoot root: String) -> stat? {
        let fd = openInRoot(root, path, flags: Int32(CLAB_O_PATH) | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        return fstat(fd, &st) == 0 ? st : nil
    }

    /// The text of a regular file inside `root` (see openInRoot), at most `limit` bytes.
    public static func read(_ path: String, inRoot root: String, limit: Int = 1 << 16) -> String? {
        let fd = openInRoot(root, path, flags: O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while out.count < limit {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, limit - out.count)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// rm -rf that never follows a symlink and never crosses into another filesystem: each
    /// directory is opened from its parent's fd with O_NOFOLLOW, and one whose device differs
    /// from the top's is a mount point, refused (callers unmount first: Mounts.unmountAll).
    /// A symlink named `path` is removed itself.
    public static func removeTree(_ path: String) throws {
        var st = stat()
        guard Glibc.lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) != S_IFDIR {
            guard unlink(path) == 0 || errno == ENOENT else { throw SyscallError("unlink \(path)") }
            return
        }
        let top = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else { throw SyscallError("open \(path)") }
        defer { close(top) }
        // A container can nest directories far deeper than the fd limit or the stack allow
        // (mkdir, chdir, again and again). Below `removeDepth` levels a directory is moved up to
        // the top (one filesystem: a rename) and emptied on the next pass, so at most
        // `removeDepth` directories are open at once, however deep the tree.
        var moved = 0
        repeat {
            // A new open file description each pass: readdir starts again, and sees what moved.
            let pass = openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard pass >= 0 else { throw SyscallError("open \(path)") }
            moved = 0
            try removeContents(pass, path: path, device: st.st_dev, depth: 1, top: top, moved: &moved)
        } while moved > 0
        guard rmdir(path) == 0 || errno == ENOENT else { throw SyscallError("rmdir \(path)") }
    }

    static let removeDepth = 128

    /// Empties the directory `dirFD` (and closes it); directories deeper than `removeDepth`
    /// are renamed into `top` instead (counted in `moved`).
    private static func removeContents(
        _ dirFD: Int32, path: String, device: dev_t, depth: Int, top: Int32, moved: inout Int
    ) throws {
        guard let dir = fdopendir(dirFD) else {
            close(dirFD)
            throw SyscallError("opendir \(path)")
        }
        defer { closedir(dir) }
        let fd = dirfd(dir)
        for (name, _) in entries(dir) {
            if unlinkat(fd, name, 0) == 0 || errno == ENOENT { continue }
            guard errno == EISDIR else { throw SyscallError("unlink \(path)/\(name)") }
            if depth >= removeDepth {
                var n = 0
                while true {
                    let target = ".clab-rm-\(getpid())-\(moved)-\(n)"
                    if clab_renameat_noreplace(fd, name, top, target) == 0 { break }
                    guard errno == EEXIST else { throw SyscallError("rename \(path)/\(name)") }
                    n += 1
                }
                moved += 1
                continue
            }
            let sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard sub >= 0 else { throw SyscallError("open \(path)/\(name)") }
            var st = stat()
            guard fstat(sub, &st) == 0, st.st_dev == device else {
                close(sub)
                throw ClabError("\(path)/\(name) is on another filesystem (a mount point): unmount it first")
            }
            try removeContents(sub, path: path + "/" + name, device: device, depth: depth + 1, top: top, moved: &moved)
            guard unlinkat(fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
                throw SyscallError("rmdir \(path)/\(name)")
            }
        }
    }
}

/// An exclusive advisory lock held for the life of the value's scope (flock(2)).
public final class FileLock {
    private let fd: Int32

    public init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SyscallError("open \(path)") }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let err = errno
            close(fd)
            throw SyscallError("flock \(path)", errno: err)
        }
    }

    deinit { close(fd) }
}
