import CShims
import Foundation
import Glibc

/// Small, direct file helpers. Foundation's FileManager is fine for trees; these are for the
/// calls whose errno a learner should see.
enum FS {
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p; directories it creates get exactly `mode` (umask aside), existing ones are
    /// left as they are (a user's --root /tmp must keep its sticky 1777).
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) == 0 {
                chmod(current, mode)
            } else if errno != EEXIST {
                throw SyscallError("mkdir \(current)")
            }
        }
    }

    static func write(_ text: String, to path: String, mode: mode_t = 0o644) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SyscallError("open \(path)") }
        defer { close(fd) }
        try writeAll(fd, Array(text.utf8), what: path)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SyscallError("write \(what)")
            }
            offset += n
        }
    }

    static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// rm -rf that never crosses into a mount: a mount below `path` makes it fail (EBUSY)
    /// rather than deleting what the mount shows.
    static func removeTree(_ path: String) throws {
        guard exists(path) else { return }
        try FileManager.default.removeItem(atPath: path)
    }

    /// The symlink target, or nil.
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return cString(buffer[0..<n])
    }
}

/// An exclusive advisory lock held for the life of the value's scope (flock(2)).
final class FileLock {
    private let fd: Int32

    init(path: String) throws {
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

/// A C buffer as a Swift string, up to its NUL.
func cString<C: Collection>(_ chars: C) -> String where C.Element == CChar {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A close-on-exec pipe: (read end, write end). Close-on-exec from birth, because another
/// thread may clone a container at any moment.
public func makePipe() throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    guard clab_pipe_cloexec(&fds) == 0 else { throw SyscallError("pipe2") }
    return (fds[0], fds[1])
}
