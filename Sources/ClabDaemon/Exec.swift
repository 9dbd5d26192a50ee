import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An ExecSession handed between threads: started on one, waited on, resized from another
/// (ExecSession is a class without locks; each of these uses touches distinct state).
final class SessionBox: @unchecked Sendable {
    let session: ExecSession
    init(_ session: ExecSession) { self.session = session }
}

/// One `docker exec`: its request, and once started its session and exit code.
final class ExecState: @unchecked Sendable {
    let id: String
    let containerID: String
    let request: ExecRequest
    let attach: (stdin: Bool, stdout: Bool, stderr: Bool)
    /// `size`: the last resize asked for. The docker CLI sends it right after the start, often
    /// before the command runs: kept, and given to the terminal once there is one.
    private let lock = Mutex<
        (
            running: Bool, exitCode: Int?, pid: Int32, session: SessionBox?, size: (UInt16, UInt16)?,
            endedAt: ContinuousClock.Instant?
        )
    >((false, nil, 0, nil, nil, nil))

    init(id: String, containerID: String, request: ExecRequest, attach: (Bool, Bool, Bool)) {
        self.id = id
        self.containerID = containerID
        self.request = request
        self.attach = attach
    }

    var snapshot: (running: Bool, exitCode: Int?, pid: Int32) {
        lock.withLock { ($0.running, $0.exitCode, $0.pid) }
    }

    func started(_ session: ExecSession) {
        lock.withLock {
            $0.running = true
            $0.session = SessionBox(session)
            $0.pid = session.pid
            if let (rows, cols) = $0.size { session.resize(rows: rows, cols: cols) }
        }
    }

    func ended(_ code: Int) {
        lock.withLock {
            $0.running = false
            $0.exitCode = code
            $0.session = nil
            $0.endedAt = .now
        }
    }

    /// Ended at least `seconds` ago (a monotonic clock: a change of the wall clock ages no exec).
    func endedLongerThan(_ seconds: Int) -> Bool {
        lock.withLock { $0.endedAt.map { ContinuousClock.now - $0 >= .seconds(seconds) } ?? false }
    }

    func resize(rows: UInt16, cols: UInt16) {
        lock.withLock {
            $0.size = (rows, cols)
            $0.session?.session.resize(rows: rows, cols: cols)
        }
    }
}

extension Engine {
    func execCreate(_ record: ContainerRecord, _ request: Request) throws -> Reply {
        let body = try request.json()
        guard let command = body["Cmd"].stringList, !command.isEmpty else {
            throw APIError(.badRequest, "No exec command specified")
        }
        for (key, value) in body.object ?? [] where !value.isZero {
            guard
                [
                    "Cmd", "Tty", "AttachStdin", "AttachStdout", "AttachStderr", "Env", "WorkingDir", "User", "Detach",
                    "ConsoleSize", "DetachKeys",
                ].contains(key)
            else {
                throw APIError(.badRequest, "\(key) is not supported by clab's exec: leave it unset")
            }
        }
        try Self.mapped { try record.check(.exec) }
        var exec = ExecRequest(command: command)
        exec.tty = body["Tty"].bool ?? false
        exec.interactive = body["AttachStdin"].bool ?? false
        exec.env = body["Env"].stringList ?? []
        if let dir = body["WorkingDir"].string, !dir.isEmpty { exec.workdir = dir }
        if let user = body["User"].string, !user.isEmpty { exec.user = user }
        let id = (0..<4).map { _ in ContainerSpec.newID() }.joined() + String(ContainerSpec.newID().prefix(16))
        let state = ExecState(
            id: id, containerID: record.id, request: exec,
            attach: (
                exec.interactive, body["AttachStdout"].bool ?? false, body["AttachStderr"].bool ?? false
            ))
        pruneExecs()
        execs.withLock { $0[id] = state }
        return .json(.created, .object([("Id", .string(id))]))
    }

    /// How long an ended exec stays inspectable (`GET /exec/ID/json`): Docker's own GC keeps
    /// one 5 minutes too.
    static let execKeptSeconds = 300

    /// Forgets the execs of containers that are gone (removed through the API, `--rm`, or
    /// `clab rm` behind clabd's back) and those that ended over 5 minutes ago: without it every
    /// `docker exec` stayed in memory for the daemon's whole life.
    func pruneExecs() {
        execs.withLock { execs in
            execs = execs.filter { _, state in
                !state.endedLongerThan(Self.execKeptSeconds) && FS.exists(layout.containerDir(state.containerID))
            }
        }
    }

    func exec(_ request: Request, _ parts: [String], _ unsupported: () -> APIError) throws -> Routed {
        guard parts.count == 2 else { throw unsupported() }
        guard let state = execs.withLock({ $0[parts[0]] }) else {
            throw APIError(.notFound, "No such exec instance: \(parts[0])")
        }
        switch (request.method, parts[1]) {
        case (.GET, "json"):
            let (running, code, pid) = state.snapshot
            return .reply(
                .json(
                    .ok,
                    .object([
                        ("ID", .string(state.id)), ("Running", .bool(running)),
                        ("ExitCode", code.map { .int($0) } ?? .null), ("CanRemove", .bool(false)),
                        ("ContainerID", .string(state.containerID)), ("DetachKeys", .string("")),
                        ("OpenStdin", .bool(state.attach.stdin)), ("OpenStdout", .bool(state.attach.stdout)),
                        ("OpenStderr", .bool(state.attach.stderr)), ("Pid", .int(Int(pid))),
                        (
                            "ProcessConfig",
                            .object([
                                ("tty", .bool(state.request.tty)), ("entrypoint", .string(state.request.command[0])),
                                ("arguments", .strings(Array(state.request.command.dropFirst()))),
                                ("privileged", .bool(false)), ("user", .string(state.request.user ?? "")),
                            ])
                        ),
                    ])))
        case (.POST, "resize"):
            let (rows, cols) = try Self.size(request)
            state.resize(rows: rows, cols: cols)
            return .reply(.empty(.ok))
        case (.POST, "start"):
            let body = try request.json()
            if state.snapshot.running || state.snapshot.exitCode != nil {
                throw APIError(.conflict, "exec \(state.id) has already run")
            }
            let record = try record(state.containerID)
            let session: ExecSession
            do {
                session = try ExecSession(record, state.request, initPath: Runtime.defaultInitPath)
            } catch let error as ClabError {
                throw APIError(.conflict, error.message)
            }
            if body["Detach"].bool == true {
                let null = open("/dev/null", O_RDWR | O_CLOEXEC)
                defer { close(null) }
                try Self.mapped { try session.start(stdio: (null, null, null)) }
                state.started(session)
                let box = SessionBox(session)
                Self.thread { state.ended(Int(box.session.wait().code)) }
                return .reply(.empty(.ok))
            }
            let bridge = ExecBridge(state: state, session: session)
            return .reply(
                .hijack(
                    contentType: state.request.tty
                        ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream",
                    bridge: bridge))
        default:
            throw unsupported()
        }
    }
}

/// A hijacked client joined to an exec's pipes: stdin into one, stdout and stderr (or the
/// terminal's output) out of the others, framed unless it has a terminal. The client is closed
/// once the exit code is recorded and the output is read (the CLI asks for the code next).
final class ExecBridge: Bridge, StdinSink, @unchecked Sendable {
    let state: ExecState
    let session: ExecSession
    var client: Channel?
    var stdinChannel: Channel?
    var openOutputs = 0
    var exited = false
    /// The output pipes' channels, paused while the client is not writable (backpressure).
    var outputs: [Channel] = []
    var clientWritable = true

    init(state: ExecState, session: ExecSession) {
        self.state = state
        self.session = session
    }

    func start(client: Channel, inbound: RawInbound) {
        self.client = client
        let loop = client.eventLoop
        let tty = state.request.tty
        do {
            let input = state.attach.stdin ? try makePipe() : nil
            let out = try makePipe()
            let err = tty ? nil : try makePipe()
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            let stdio = (input?.read ?? null, out.write, err?.write ?? out.write)
            // The command's ends stay open until it exits (with a terminal, the session's relay writes to them).
            let theirs = [input?.read, out.write, err?.write, null].compactMap { $0 }
            openOutputs = err == nil ? 1 : 2
            addOutput(fd: out.read, stream: 1, loop: loop)
            if let err { addOutput(fd: err.read, stream: 2, loop: loop) }
            if let input {
                let bound = NIOLoopBound(inbound, eventLoop: loop)
                NIOPipeBootstrap(group: loop).takingOwnershipOfDescriptor(output: input.write).whenSuccess {
                    self.stdinChannel = $0
                    bound.value.connect(self)
                }
            } else {
                inbound.connect(self)
            }
            let box = SessionBox(session)
            let state = state
            Engine.thread {
                let session = box.session
                var code = 126
                do {
                    try session.start(stdio: stdio)
                    state.started(session)
                    if !tty { for fd in theirs { close(fd) } }
                    code = Int(session.wait().code)
                } catch {
                    let message = Array(("clab: \((error as? ClabError)?.message ?? "\(error)")\n").utf8)
                    _ = message.withUnsafeBytes { write(err?.write ?? out.write, $0.baseAddress, $0.count) }
                    if let clab = error as? ClabError { code = Int(clab.exitCode) }
                }
                state.ended(code)
                if tty {
                    for fd in theirs { close(fd) }
                } else if state.snapshot.pid == 0 {
                    for fd in theirs { close(fd) }
                }
                loop.execute { self.exitRecorded() }
            }
        } catch {
            client.close(promise: nil)
        }
    }

    private func addOutput(fd: Int32, stream: UInt8, loop: EventLoop) {
        NIOPipeBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ExecOutput(bridge: self, stream: stream))
                }
            }
            .takingOwnershipOfDescriptor(input: fd)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.outputs.append(channel)
                    if !self.clientWritable {
                        channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                    }
                case .failure:
                    close(fd)
                    self.outputClosed()
                }
            }
    }

    func output(stream: UInt8, _ buffer: ByteBuffer) {
        guard let client, (stream == 1 && state.attach.stdout) || (stream == 2 && state.attach.stderr) else { return }
        if state.request.tty {
            client.writeAndFlush(buffer, promise: nil)
        } else {
            var framed = client.allocator.buffer(capacity: buffer.readableBytes + 8)
            framed.writeBytes([stream, 0, 0, 0])
            framed.writeInteger(UInt32(buffer.readableBytes))
            var body = buffer
            framed.writeBuffer(&body)
            client.writeAndFlush(framed, promise: nil)
        }
    }

    func outputClosed() {
        openOutputs -= 1
        maybeFinish()
    }

    func clientWritable(_ writable: Bool) {
        clientWritable = writable
        for channel in outputs { channel.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in } }
    }

    func exitRecorded() {
        exited = true
        maybeFinish()
        // A background process may hold the output open: the stream ends a moment after the exit.
        client?.eventLoop.scheduleTask(in: .seconds(1)) { self.finish() }
    }

    private func maybeFinish() {
        if exited && openOutputs <= 0 { finish() }
    }

    private func finish() {
        guard let client, client.isActive else { return }
        client.writeAndFlush(ByteBuffer(), promise: nil)
        client.close(promise: nil)
        stdinChannel?.close(promise: nil)
    }

    func stdin(_ buffer: ByteBuffer) {
        stdinChannel?.writeAndFlush(buffer, promise: nil)
    }

    func stdinClosed() {
        stdinChannel?.close(promise: nil)
        stdinChannel = nil
    }

    func clientGone() {
        stdinChannel?.close(promise: nil)
        // The command goes on (as with Docker); its output has nowhere to go.
    }
}

final class ExecOutput: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let bridge: ExecBridge
    let stream: UInt8

    init(bridge: ExecBridge, stream: UInt8) {
        self.bridge = bridge
        self.stream = stream
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bridge.output(stream: stream, unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        bridge.outputClosed()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
