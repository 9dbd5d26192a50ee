import ClabHost
import ClabSys
import FoundationEssentials
import Glibc

/// `gzip -n` as a filter for one blob. The tar goes in through a socket (send with
/// MSG_NOSIGNAL: a gzip that died is an error, not a SIGPIPE for clab), and the compressed
/// bytes come out of a pipe into the blob file, hashed on the way. One thread: poll(2) moves
/// bytes in whichever direction is ready, so neither side can fill up and block the other.
final class Compressor {
    private var input: Int32
    private var output: Int32
    private let file: Int32
    private let what: String
    private var tool: Tool?
    private var hash = SHA256()
    private var size = 0
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)

    init(file: Int32, what: String) throws {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw SyscallError("socketpair")
        }
        let pipe: (read: Int32, write: Int32)
        do { pipe = try makePipe() } catch {
            close(pair[0])
            close(pair[1])
            throw error
        }
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer {
            close(devNull)
            close(pair[1])
            close(pipe.write)
        }
        do {
            tool = try Tool.start(["gzip", "-n", "-c"], stdin: pair[1], stdout: pipe.write, stderr: devNull)
        } catch {
            close(pair[0])
            close(pipe.read)
            throw error
        }
        input = pair[0]
        output = pipe.read
        self.file = file
        self.what = what
    }

    deinit { cancel() }

    func feed(_ bytes: ArraySlice<UInt8>) throws {
        var rest = bytes
        while !rest.isEmpty {
            var fds = [
                pollfd(fd: input, events: Int16(POLLOUT), revents: 0),
                pollfd(fd: output, events: Int16(POLLIN), revents: 0),
            ]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                throw SyscallError("poll")
            }
            if fds[1].revents != 0 {
                guard try drainOnce() else { throw ClabError("gzip -n exited before the layer was packed") }
            }
            if fds[0].revents != 0 {
                let n = rest.withUnsafeBytes {
                    send(input, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                }
                if n < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    throw ClabError("gzip -n stopped reading the layer: \(errnoDescription(errno))")
                }
                rest = rest.dropFirst(n)
            }
        }
    }

    /// Ends the input, takes the rest of gzip's output; the blob's digest and size.
    func finish() throws -> (digest: String, size: Int) {
        close(input)
        input = -1
        while try drainOnce() {}
        close(output)
        output = -1
        let status = tool?.wait() ?? -1
        tool = nil
        guard status == 0 else { throw ClabError("gzip -n failed (status \(status)) packing \(what)") }
        return ("sha256:" + hash.finalize(), size)
    }

    /// Stops gzip (on an error path): closing both ends makes it exit.
    func cancel() {
        if input >= 0 { close(input) }
        if output >= 0 { close(output) }
        input = -1
        output = -1
        _ = tool?.wait()
        tool = nil
    }

    /// One read from gzip into the blob; false at end of output.
    private func drainOnce() throws -> Bool {
        let n = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { return true }
            throw SyscallError("read from gzip")
        }
        if n == 0 { return false }
        hash.update(buffer[0..<n])
        size += n
        try FS.writeAll(file, Array(buffer[0..<n]), what: what)
        return true
    }
}
