import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// A container whose stdin and stdout are pipes to us: start it, read what it says while it
/// runs, then let it finish. Used by the probes, which must look at a live container.
final class ContainerSession {
    let container: Container
    let prepared: PreparedContainer
    private var input: Int32
    private var output: Int32
    private var pending: [UInt8] = []
    private var finished = false

    var pid: pid_t { container.pid }

    init(prepared: PreparedContainer, runtime: Runtime) throws {
        let inPipePair = try makePipe()
        let outPipePair: (read: Int32, write: Int32)
        do { outPipePair = try makePipe() } catch {
            close(inPipePair.read)
            close(inPipePair.write)
            throw error
        }
        let inPipe = [inPipePair.read, inPipePair.write]
        let outPipe = [outPipePair.read, outPipePair.write]
        self.prepared = prepared
        container = try runtime.makeContainer(prepared)
        input = inPipe[1]
        output = outPipe[0]
        defer {
            close(inPipe[0])
            close(outPipe[1])
        }
        do {
            try container.start(stdio: (inPipe[0], outPipe[1], outPipe[1]))
        } catch {
            close(input)
            close(output)
            input = -1
            output = -1
            Runtime.remove(container, prepared)
            throw error
        }
    }

    /// KEY=VALUE lines up to READY (or the end of output, if the script failed early).
    func readFacts() throws -> [String: String] {
        var facts: [String: String] = [:]
        while let line = readLine() {
            if line == "READY" { break }
            if let eq = line.firstIndex(of: "=") {
                facts[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
        }
        return facts
    }

    private func readLine() -> String? {
        while true {
            if let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                return line
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if pending.isEmpty { return nil }
                defer { pending.removeAll() }
                return String(decoding: pending, as: UTF8.self)
            }
            pending += buffer[0..<n]
        }
    }

    /// Lets the script finish, reaps it and removes its state. Idempotent.
    @discardableResult
    func finish() -> RunResult? {
        guard !finished else { return nil }
        finished = true
        if input >= 0 {
            _ = "\n".withCString { write(input, $0, 1) }
            close(input)
            input = -1
        }
        while readLine() != nil {}
        close(output)
        output = -1
        let status = container.wait()
        let result = RunResult(status: status, counters: prepared.cgroup?.counters())
        Runtime.remove(container, prepared)
        return result
    }
}
