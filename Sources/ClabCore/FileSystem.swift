import CShims
import FoundationEssentials
import Glibc

extension FS {
    public static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Every path below `root` (not `root` itself), without following symlinks.
    public static func walk(_ root: String) -> [String] {
        var result: [String] = []
        var pending = [root]
        while let dir = pending.popLast() {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                let path = dir + "/" + name
                result.append(path)
                var st = stat()
                if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { pending.append(path) }
            }
        }
        return result
    }

    /// rm -rf. Callers unmount first (Mounts.unmountAll): this would walk into a mount.
    public static func removeTree(_ path: String) throws {
        guard exists(path) else { return }
        try FileManager.default.removeItem(atPath: path)
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

/// A close-on-exec pipe: (read end, write end). Close-on-exec from birth, because another
/// thread may clone a container at any moment.
public func makePipe() throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    guard clab_pipe_cloexec(&fds) == 0 else { throw SyscallError("pipe2") }
    return (fds[0], fds[1])
}
