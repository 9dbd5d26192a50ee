import CShims
import Glibc

/// Small, direct file helpers whose errno a learner should see. No Foundation: init uses them.
public enum FS {
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p; directories it creates get exactly `mode` (umask aside), existing ones are
    /// left as they are (a user's --root /tmp must keep its sticky 1777).
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        // Usually the parent exists (or the whole path does): one mkdir, not one per component.
        // Anything else takes the walk below, which names the component that failed.
        if mkdir(path, mode) == 0 {
            chmod(path, mode)
            return
        } else if errno == EEXIST {
            return
        }
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

    public static func write(_ text: String, to path: String, mode: mode_t = 0o644) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SyscallError("open \(path)") }
        defer { close(fd) }
        try writeAll(fd, Array(text.utf8), what: path)
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String) throws {
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

    /// Exactly `count` bytes from `fd`, through EINTR; nil if reading failed (errno says why)
    /// or the file ended first (errno 0).
    public static func readExactly(_ fd: Int32, count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress.map { $0 + done }, count - done) }
            if n < 0 && errno == EINTR { continue }
            if n == 0 { errno = 0 }
            guard n > 0 else { return nil }
            done += n
        }
        return bytes
    }

    /// The symlink target, or nil.
    public static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return cString(buffer[0..<n])
    }
}

/// A C buffer as a Swift string, up to its NUL.
public func cString<C: Collection>(_ chars: C) -> String where C.Element == CChar {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// clab's one pipe: (read end, write end), close-on-exec from birth (pipe2), never pipe + fcntl:
/// another thread may clone a container or spawn a tool between the two and leak both ends.
public func makePipe() throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    guard clab_pipe_cloexec(&fds) == 0 else { throw SyscallError("pipe2") }
    return (fds[0], fds[1])
}

/// NUL-terminated C string arrays, alive for the duration of `body`.
public func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let array = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
    for (i, s) in strings.enumerated() { array[i] = strdup(s) }
    array[strings.count] = nil
    defer {
        for i in 0..<strings.count { free(array[i]) }
        array.deallocate()
    }
    return body(UnsafePointer(array))
}
