import ClabRuntime
import ClabSpec
import Glibc
import NIOCore
import NIOPosix

/// What an attach asked for.
struct AttachPlan: Sendable {
    var record: ContainerRecord
    var stdin: Bool
    var stdout: Bool
    var stderr: Bool
    var tty: Bool
    /// `docker run -i`: the container's stdin closes when this client's does.
    var stdinOnce: Bool
}

extension Engine {
    func attachPlan(_ record: ContainerRecord, _ request: Request) throws -> AttachPlan {
        guard record.isDetached else {
            throw APIError(
                .conflict, "container \(record.name) runs in the foreground of its `clab step`: attach there")
        }
        if record.status == .stopped {
            throw APIError(.conflict, "You cannot attach to a stopped container, start it first")
        }
        if request.flag("logs") {
            throw APIError(.notImplemented, "attach with logs=1 is not supported: `docker logs` first")
        }
        let config = meta(record)?["Config"] ?? .null
        return AttachPlan(
            record: record, stdin: request.flag("stdin"), stdout: request.flag("stdout"),
            stderr: request.flag("stderr"),
            tty: config["Tty"].bool ?? false,
            stdinOnce: (config["StdinOnce"].bool ?? false) && (config["OpenStdin"].bool ?? false))
    }

    /// Connects to the supervisor's attach socket first (so no output is missed between the
    /// answer and `start`), then hijacks the client's connection.
    func attach(_ plan: AttachPlan, on loop: EventLoop) -> EventLoopFuture<Reply> {
        let path = plan.record.dir + "/" + SupervisorInterface.attachName
        let bridge = AttachBridge(plan: plan)
        return ClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SupervisorFrames(bridge: bridge))
                }
            }
            .connect(unixDomainSocketPath: path)
            .map { backend in
                bridge.backend = backend
                let type = plan.tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream"
                return Reply.hijack(contentType: type, bridge: bridge)
            }
            .flatMapErrorThrowing { error in
                throw APIError(.conflict, "container \(plan.record.name): cannot attach to its supervisor (\(error))")
            }
    }
}

/// A hijacked client joined to a supervisor's attach socket. Everything runs on the one event
/// loop both channels share.
final class AttachBridge: Bridge, StdinSink, @unchecked Sendable {
    let plan: AttachPlan
    var backend: Channel?
    var client: Channel?
    /// Output that came before the client was taken over.
    var early: [ByteBuffer] = []
    var backendDone = false

    init(plan: AttachPlan) { self.plan = plan }

    func start(client: Channel, inbound: RawInbound) {
        self.client = client
        for buffer in early { client.write(buffer, promise: nil) }
        early = []
        client.flush()
        inbound.connect(self)
        if backendDone { finish() }
    }

    /// One frame from the supervisor (header included).
    func output(stream: UInt8, frame: ByteBuffer) {
        guard (stream == 1 && plan.stdout) || (stream == 2 && plan.stderr) else { return }
        var out = frame
        if plan.tty { out.moveReaderIndex(forwardBy: SupervisorInterface.headerSize) }
        if let client { client.writeAndFlush(out, promise: nil) } else { early.append(out) }
    }

    func backendClosed() {
        backendDone = true
        if client != nil { finish() }
    }

    private func finish() {
        guard let client else { return }
        // After what was written: the CLI reads to EOF, then asks `wait` for the status.
        client.writeAndFlush(ByteBuffer(), promise: nil)
        client.close(promise: nil)
    }

    func stdin(_ buffer: ByteBuffer) {
        guard plan.stdin else { return }
        backend?.writeAndFlush(buffer, promise: nil)
    }

    func stdinClosed() {
        // In band, after the bytes before it: the supervisor closes the container's stdin.
        if plan.stdin && plan.stdinOnce { backend?.close(mode: .output, promise: nil) }
    }

    func clientWritable(_ writable: Bool) {
        backend?.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in }
    }

    func clientGone() {
        backend?.close(promise: nil)
    }
}

/// Splits the supervisor's stream into frames (8-byte header: stream, 0, 0, 0, length).
final class SupervisorFrames: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let bridge: AttachBridge
    private var pending = ByteBuffer()

    init(bridge: AttachBridge) { self.bridge = bridge }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        pending.writeBuffer(&buffer)
        while pending.readableBytes >= SupervisorInterface.headerSize {
            let index = pending.readerIndex
            guard let stream = pending.getInteger(at: index, as: UInt8.self),
                let length = pending.getInteger(at: index + 4, as: UInt32.self),
                pending.readableBytes >= SupervisorInterface.headerSize + Int(length),
                let frame = pending.readSlice(length: SupervisorInterface.headerSize + Int(length))
            else { break }
            bridge.output(stream: stream, frame: frame)
        }
        pending.discardReadBytes()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        bridge.backendClosed()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
