import CShims
import Glibc

/// Paths inside the container's root, resolved the way the container will see them.
///
/// Before pivot_root, init still lives in the host's root. A naive `open(root + "/dev/null",
/// O_CREAT)` follows symlinks the image put there from the *host's* "/": an image holding
/// `/data -> /etc/cron.d` would have init create files in the host's /etc/cron.d. So every
/// lookup below starts at an fd of the root with openat2(RESOLVE_IN_ROOT), where ".." and
/// absolute symlinks stop at the container's root, every create is relative to a directory fd
/// found that way and never follows a final symlink (mkdirat, O_CREAT|O_EXCL|O_NOFOLLOW), and
/// mounts target the resolved fd through /proc/self/fd, so nothing is looked up twice.
public struct InRoot {
    public let rootFD: Int32
    let rootPath: String

    /// Opens the root (an O_PATH fd). Close it with `close()`.
    public init(_ root: String) throws {
        rootFD = open(root, CLAB_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw SyscallError("open \(root)") }
        rootPath = root
    }

    public func close() { _ = Glibc.close(rootFD) }

    public enum Kind { case directory, file }

    /// "/a/./b/../c" -> ["a", "c"]: what the path names inside the root, ".." clamped at "/"
    /// as RESOLVE_IN_ROOT does (symlinks are followed later, in the kernel, still in the root).
    public static func components(_ path: String) -> [String] {
        var parts: [String] = []
        for part in path.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(String(part))
            }
        }
        return parts
    }

    /// An O_PATH fd of `path` in the root, or -1 with errno (ENOENT for a dangling symlink too).
    public func lookup(_ path: String) -> Int32 {
        clab_openat2(rootFD, path.isEmpty ? "/" : path, Int32(CLAB_O_PATH | O_CLOEXEC), UInt64(CLAB_RESOLVE_IN_ROOT))
    }

    /// An O_PATH fd for `path` inside the root, making it (and its parents, as directories) if
    /// missing. A dangling symlink on the way is followed inside the root and its target made.
    /// The path is cleaned first ("." and ".." taken lexically, as Docker cleans a mount's
    /// destination); symlinks are then followed by the kernel, inside the root.
    public func resolveCreating(_ path: String, _ kind: Kind, depth: Int = 0) throws -> Int32 {
        var parts = Self.components(path)
        let path = "/" + parts.joined(separator: "/")
        let fd = lookup(path)
        if fd >= 0 { return fd }
        guard errno == ENOENT else { throw SyscallError("openat2 \(path) (RESOLVE_IN_ROOT)") }
        // 40 links, as the kernel allows in one lookup (ELOOP after that).
        guard depth < 40 else { throw SyscallError("resolve \(path) in the container's root", errno: ELOOP) }
        guard let name = parts.popLast() else { throw SyscallError("openat2 / (RESOLVE_IN_ROOT)") }
        let parentPath = "/" + parts.joined(separator: "/")
        let parentFD = try resolveCreating(parentPath, .directory, depth: depth)
        defer { Glibc.close(parentFD) }
        // The O_PATH fd is enough for *at calls once reopened as a directory.
        let dirFD = openat(parentFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { throw SyscallError("open \(parentPath)") }
        defer { Glibc.close(dirFD) }
        let made: Bool
        switch kind {
        case .directory:
            made = mkdirat(dirFD, name, 0o755) == 0
        case .file:
            let file = openat(dirFD, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0o644)
            made = file >= 0
            if made { Glibc.close(file) }
        }
        if !made {
            guard errno == EEXIST else {
                throw SyscallError(kind == .directory ? "mkdir \(path)" : "create \(path)")
            }
            // It exists, yet the in-root lookup found nothing: a symlink whose target is
            // missing. Make the target, where the link points inside the root.
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlinkat(dirFD, name, &buffer, buffer.count - 1)
            guard n > 0 else { throw SyscallError("readlink \(path)") }
            let link = cString(buffer[0..<n])
            let target = link.hasPrefix("/") ? link : parentPath + "/" + link
            return try resolveCreating(target, kind, depth: depth + 1)
        }
        let again = lookup(path)
        guard again >= 0 else { throw SyscallError("openat2 \(path) (RESOLVE_IN_ROOT)") }
        return again
    }

    /// The path a mount(2) call can take to mean exactly this fd.
    public static func procPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }
}
