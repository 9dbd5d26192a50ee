import CShims
import Glibc

/// Stage 10: volumes. A volume is a directory outside the container's layers, bind-mounted at
/// a path inside: what is written there outlives the container, and two containers that mount
/// it see each other's writes. `:ro` makes the bind read-only.
///
/// The path is resolved inside the container's root with openat2(RESOLVE_IN_ROOT): an image
/// could hold `/data -> ../../..`, and a path walked naively from the host would follow it out
/// of the root and mount over the host's own directories. The mount then targets the
/// resolved directory through /proc/self/fd, so no path is looked up twice.
enum VolumeStage {
    static func mountVolumes(_ volumes: [VolumeSpec], root: String) throws {
        try step(10) {
            let rootFD = open(root, CLAB_O_PATH | O_DIRECTORY | O_CLOEXEC)
            guard rootFD >= 0 else { throw SyscallError("open \(root)") }
            defer { close(rootFD) }
            for volume in volumes {
                let isDir = FS.isDirectory(volume.source)
                let target = try resolveCreating(volume.target, in: rootFD, directory: isDir)
                defer { close(target) }
                try check(
                    mount(volume.source, "/proc/self/fd/\(target)", nil, UInt(MS_BIND | MS_REC), nil),
                    "mount --bind \(volume.source) \(volume.target)")
                if volume.readOnly {
                    // The bind is a new mount on top of the target: find it again and remount it.
                    let top = try resolveCreating(volume.target, in: rootFD, directory: isDir)
                    defer { close(top) }
                    try check(
                        mount(nil, "/proc/self/fd/\(top)", nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY), nil),
                        "mount -o remount,bind,ro \(volume.target)")
                }
            }
        }
    }

    /// An O_PATH fd for `path` inside the root, creating it (and its parents) if missing.
    static func resolveCreating(_ path: String, in rootFD: Int32, directory: Bool) throws -> Int32 {
        let fd = clab_openat2(rootFD, path, Int32(CLAB_O_PATH | O_CLOEXEC), UInt64(CLAB_RESOLVE_IN_ROOT))
        if fd >= 0 { return fd }
        guard errno == ENOENT else { throw SyscallError("openat2 \(path) (RESOLVE_IN_ROOT)") }
        let parent = Path.dirname(path)
        let parentFD = try resolveCreating(parent == "." ? "/" : parent, in: rootFD, directory: true)
        defer { close(parentFD) }
        let name = Path.basename(path)
        // The parent's O_PATH fd is enough for *at calls once reopened as a directory.
        let dirFD = openat(parentFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { throw SyscallError("open \(parent)") }
        defer { close(dirFD) }
        if directory {
            guard mkdirat(dirFD, name, 0o755) == 0 || errno == EEXIST else { throw SyscallError("mkdir \(path)") }
        } else {
            let file = openat(dirFD, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
            guard file >= 0 else { throw SyscallError("create \(path)") }
            close(file)
        }
        let again = clab_openat2(rootFD, path, Int32(CLAB_O_PATH | O_CLOEXEC), UInt64(CLAB_RESOLVE_IN_ROOT))
        guard again >= 0 else { throw SyscallError("openat2 \(path) (RESOLVE_IN_ROOT)") }
        return again
    }
}
