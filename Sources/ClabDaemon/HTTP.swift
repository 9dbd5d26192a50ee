import ClabRuntime
import ClabSys
import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix

/// One API request, read whole (bodies are capped: `maxBody`).
struct Request: Sendable {
    var method: HTTPMethod
    /// Without the `/v1.41` prefix.
    var path: String
    var query: [String: String]
    var headers: HTTPHeaders
    var body: [UInt8]
    /// The client asked to take the connection over (`Upgrade: tcp`): attach, exec start.
    var upgrade: Bool

    /// `?all=1`, `?all=true`: Docker's booleans.
    func flag(_ name: String) -> Bool {
        guard let value = query[name] else { return false }
        return !(value == "0" || value.lowercased() == "false" || value.isEmpty)
    }

    /// The body as JSON (an empty body is an empty object), or a 400.
    func json() throws -> JSON {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return .object([]) }
        do throws(JSON.ParseError) {
            return try JSON.parse(body)
        } catch {
            throw APIError(.badRequest, "the request body is \(error)")
        }
    }
}

/// An error the API answers with: its status and `{"message": ...}` (the docker CLI prints
/// "Error response from daemon: " and the message).
struct APIError: Error, Sendable {
    var status: HTTPResponseStatus
    var message: String
    init(_ status: HTTPResponseStatus, _ message: String) {
        self.status = status
        self.message = message
    }
}

/// Writes a chunked response body from a blocking thread (logs -f, wait, pull progress).
final class StreamWriter: @unchecked Sendable {
    let channel: Channel
    private let closing: WakePipe

    init(channel: Channel) {
        self.channel = channel
        let closing = WakePipe()
        self.closing = closing
        channel.closeFuture.whenComplete { _ in closing.fire() }
    }

    /// Readable once the client went away: a producer that waits in poll(2) for something else
    /// (a container's end) adds it, so it stops waiting with its reader.
    var closedFD: Int32 { closing.readEnd }

    /// Queues without waiting (progress lines from an async task: order is kept).
    func send(_ bytes: [UInt8]) {
        let buffer = channel.allocator.buffer(bytes: bytes)
        channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
    }

    /// Waits until written: a reader that went away makes it throw, which ends the producer.
    func write(_ bytes: [UInt8]) throws {
        guard channel.isActive else { throw APIError(.gone, "the client went away") }
        if bytes.isEmpty { return }
        let buffer = channel.allocator.buffer(bytes: bytes)
        try channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer))).wait()
    }
}

/// A pipe whose read end turns readable on `fire()`. Its fds live as long as the object, which
/// the close callback holds: a late `fire()` never writes to a number reused meanwhile.
final class WakePipe: Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    init() {
        // Close-on-exec from the start: other threads spawn `clab create` meanwhile.
        let fds = (try? makePipe()) ?? (-1, -1)
        readEnd = fds.0
        writeEnd = fds.1
    }

    func fire() {
        var byte: UInt8 = 1
        if writeEnd >= 0 { _ = Glibc.write(writeEnd, &byte, 1) }
    }

    deinit {
        if readEnd >= 0 { close(readEnd) }
        if writeEnd >= 0 { close(writeEnd) }
    }
}

/// What a route answers.
enum Reply: Sendable {
    case json(HTTPResponseStatus, JSON)
    case empty(HTTPResponseStatus)
    case text(HTTPResponseStatus, String)
    /// A chunked body written by `producer` on its own thread; the head goes out first (the
    /// docker CLI's `wait` returns from its POST only once the head arrives).
    case stream(contentType: String, producer: @Sendable (StreamWriter) throws -> Void)
    /// The connection becomes a raw byte stream (`101 UPGRADED`, or 200 when the client did not
    /// ask to upgrade), handed to `bridge` once HTTP is out of the pipeline.
    case hijack(contentType: String, bridge: any Bridge)
}

/// Takes a hijacked connection over.
protocol Bridge: Sendable {
    /// On the channel's event loop, with only raw bytes in the pipeline.
    func start(client: Channel, inbound: RawInbound)
}

/// The HTTP/1.1 side: collects a request, asks the engine, writes the reply.
final class APIHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Requests bigger than this are refused (a create body is a few KiB).
    static let maxBody = 1 << 20

    let engine: Engine
    let encoder: HTTPResponseEncoder
    let decoder: ByteToMessageHandler<HTTPRequestDecoder>
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    private var inputClosed = false
    private var busy = false

    init(engine: Engine, encoder: HTTPResponseEncoder, decoder: ByteToMessageHandler<HTTPRequestDecoder>) {
        self.engine = engine
        self.encoder = encoder
        self.decoder = decoder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
            tooLarge = false
        case .body(var buffer):
            if body.count + buffer.readableBytes > Self.maxBody {
                tooLarge = true
                body = []
            } else if !tooLarge, let bytes = buffer.readBytes(length: buffer.readableBytes) {
                body += bytes
            }
        case .end:
            guard let head else { return }
            self.head = nil
            handle(context: context, head: head)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client closed its side (allowRemoteHalfClosure): finish what runs, then close.
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            if !busy { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A malformed request: answer 400 once, then close (the connection's framing is lost).
        if error is HTTPParserError && !busy {
            let reply = JSON.object([("message", .string("malformed HTTP request: \(error)"))])
            write(context: context, status: .badRequest, json: reply, keepAlive: false)
            return
        }
        context.close(promise: nil)
    }

    private func handle(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let keepAlive = head.isKeepAlive
        if tooLarge {
            let reply = JSON.object([("message", .string("request body over \(Self.maxBody) bytes: refused"))])
            write(context: context, status: .payloadTooLarge, json: reply, keepAlive: false)
            return
        }
        let overTCP: Bool
        switch context.channel.localAddress {
        case .v4, .v6: overTCP = true
        default: overTCP = false
        }
        if let refusal = Self.refusal(head, hasBody: !body.isEmpty, overTCP: overTCP) {
            write(
                context: context, status: .forbidden, json: .object([("message", .string(refusal))]), keepAlive: false)
            return
        }
        let (path, query) = Self.split(head.uri)
        let (version, rest) = Self.version(path)
        if let version, Self.newer(version, than: Engine.apiVersion) {
            let reply = JSON.object([
                (
                    "message",
                    .string(
                        "client version \(version) is too new. Maximum supported API version is \(Engine.apiVersion)")
                )
            ])
            write(context: context, status: .badRequest, json: reply, keepAlive: keepAlive)
            return
        }
        let upgrade = head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
        let request = Request(
            method: head.method, path: rest, query: query, headers: head.headers, body: body, upgrade: upgrade)
        if engine.debug {
            let shown = String(decoding: body.prefix(4096), as: UTF8.self)
            FileHandle.standardError.write(Data("clabd: \(head.method.rawValue) \(head.uri) \(shown)\n".utf8))
        }
        body = []
        busy = true
        let future = engine.route(request, on: context.eventLoop)
        future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            self.busy = false
            switch result {
            case .success(let reply): self.send(context: context, reply: reply, head: head, upgrade: upgrade)
            case .failure(let error as APIError):
                self.write(
                    context: context, status: error.status, json: .object([("message", .string(error.message))]),
                    keepAlive: keepAlive)
            case .failure(let error):
                self.write(
                    context: context, status: .internalServerError, json: .object([("message", .string("\(error)"))]),
                    keepAlive: keepAlive)
            }
        }
    }

    /// Why a request is refused before routing, if it is. With `--tcp`, a web page in a browser
    /// on this machine can reach the loopback port: a cross-origin "simple" POST (text/plain,
    /// no preflight) or DNS rebinding would drive a root API. The docker CLI and curl never
    /// send `Origin`, always send JSON bodies as application/json, and name a loopback host;
    /// browsers send `Origin` on every cross-origin and every POST request. So: no `Origin`, a
    /// body only as JSON, and over TCP a loopback `Host` (on the unix socket the host is any word).
    static func refusal(_ head: HTTPRequestHead, hasBody: Bool, overTCP: Bool) -> String? {
        if head.headers.contains(name: "Origin") {
            return "requests from web pages (an Origin header) are refused: this API runs containers as root"
        }
        if hasBody {
            let type = head.headers.first(name: "Content-Type")?.lowercased() ?? ""
            guard type.hasPrefix("application/json") else {
                return "a request body must be JSON (Content-Type: application/json), not '\(type.prefix(80))'"
            }
        }
        if overTCP {
            let host = head.headers.first(name: "Host") ?? ""
            let name =
                host.hasPrefix("[")
                ? String(host.prefix { $0 != "]" }) + "]" : String(host.split(separator: ":").first ?? "")
            guard ["localhost", "127.0.0.1", "[::1]"].contains(name.lowercased()) else {
                return "Host '\(host.prefix(80))' is not this machine's loopback: refused (a rebound DNS name?)"
            }
        }
        return nil
    }

    private func send(context: ChannelHandlerContext, reply: Reply, head: HTTPRequestHead, upgrade: Bool) {
        let keepAlive = head.isKeepAlive
        switch reply {
        case .json(let status, let json):
            write(context: context, status: status, json: json, keepAlive: keepAlive)
        case .empty(let status):
            var headers = Self.baseHeaders()
            headers.add(name: "Content-Length", value: "0")
            finish(context: context, status: status, headers: headers, body: nil, keepAlive: keepAlive)
        case .text(let status, let text):
            var headers = Self.baseHeaders()
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "Content-Length", value: "\(text.utf8.count)")
            // HEAD: the headers only (a body would be read as the next response).
            finish(
                context: context, status: status, headers: headers,
                body: head.method == .HEAD ? nil : context.channel.allocator.buffer(string: text), keepAlive: keepAlive)
        case .stream(let contentType, let producer):
            var headers = Self.baseHeaders()
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Connection", value: "close")
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))),
                promise: nil)
            let channel = context.channel
            let writer = StreamWriter(channel: channel)
            Engine.thread {
                // Errors here are a reader gone or the container gone: the stream just ends.
                try? producer(writer)
                channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
                    channel.close(promise: nil)
                }
            }
        case .hijack(let contentType, let bridge):
            var headers = Self.baseHeaders()
            headers.add(name: "Content-Type", value: contentType)
            if upgrade {
                headers.add(name: "Connection", value: "Upgrade")
                headers.add(name: "Upgrade", value: "tcp")
            }
            let status: HTTPResponseStatus =
                upgrade ? .custom(code: 101, reasonPhrase: "UPGRADED") : .ok
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                promise: nil)
            // HTTP leaves the pipeline: the bridge first (so bytes the client sent after the
            // request reach it), then the decoder (forwarding them), then the encoder.
            let channel = context.channel
            let pipeline = context.pipeline
            let raw = RawInbound()
            let sync = pipeline.syncOperations
            do {
                try sync.addHandler(raw)
            } catch {
                channel.close(promise: nil)
                return
            }
            let removals = [sync.removeHandler(self), sync.removeHandler(encoder), sync.removeHandler(decoder)]
            EventLoopFuture.andAllSucceed(removals, on: context.eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case .success: raw.attach(bridge: bridge, channel: channel)
                case .failure: channel.close(promise: nil)
                }
            }
        }
    }

    private func write(context: ChannelHandlerContext, status: HTTPResponseStatus, json: JSON, keepAlive: Bool) {
        var headers = Self.baseHeaders()
        let text = json.text + "\n"
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(text.utf8.count)")
        finish(
            context: context, status: status, headers: headers, body: context.channel.allocator.buffer(string: text),
            keepAlive: keepAlive)
    }

    private func finish(
        context: ChannelHandlerContext, status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer?,
        keepAlive: Bool
    ) {
        var headers = headers
        let close = !keepAlive || inputClosed
        if close { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    static func baseHeaders() -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Api-Version", value: Engine.apiVersion)
        headers.add(name: "Docker-Experimental", value: "false")
        headers.add(name: "Ostype", value: "linux")
        headers.add(name: "Server", value: "clabd/\(Engine.clabVersion) (linux)")
        return headers
    }

    /// "/v1.41/containers/json?all=1" → ("/v1.41/containers/json", ["all": "1"]).
    static func split(_ uri: String) -> (String, [String: String]) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = percentDecode(String(kv[0]))
                query[key] = kv.count > 1 ? percentDecode(String(kv[1])) : ""
            }
        }
        return (percentDecode(String(parts[0])), query)
    }

    /// "1.50" is newer than "1.41" (numerically, part by part).
    static func newer(_ a: String, than b: String) -> Bool {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }
        let y = b.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<max(x.count, y.count) {
            let (p, q) = (i < x.count ? x[i] : 0, i < y.count ? y[i] : 0)
            if p != q { return p > q }
        }
        return false
    }

    /// "/v1.41/x" → ("1.41", "/x"); "/x" → (nil, "/x").
    static func version(_ path: String) -> (String?, String) {
        guard path.hasPrefix("/v") else { return (nil, path) }
        let rest = path.dropFirst(2)
        let number = rest.prefix { $0.isNumber || $0 == "." }
        guard !number.isEmpty, rest.dropFirst(number.count).first == "/" else { return (nil, path) }
        return (String(number), String(rest.dropFirst(number.count)))
    }

    static func percentDecode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let b = utf8.popFirst() {
            if b == UInt8(ascii: "%"), utf8.count >= 2,
                let n = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(n)
                utf8 = utf8.dropFirst(2)
            } else if b == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The hijacked connection's inbound end: bytes the client sends (stdin) and its half-close,
/// held until the bridge is attached, then handed to it.
final class RawInbound: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var held: [ByteBuffer] = []
    private var heldEOF = false
    private var sink: (any StdinSink)?

    func attach(bridge: any Bridge, channel: Channel) {
        bridge.start(client: channel, inbound: self)
    }

    /// Set by the bridge (on the event loop) to receive stdin.
    func connect(_ sink: any StdinSink) {
        self.sink = sink
        for buffer in held { sink.stdin(buffer) }
        held = []
        if heldEOF { sink.stdinClosed() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if let sink { sink.stdin(buffer) } else { held.append(buffer) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            if let sink { sink.stdinClosed() } else { heldEOF = true }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        sink?.clientGone()
        context.fireChannelInactive()
    }

    /// The client stopped reading (its socket buffer and NIO's high watermark are full), or
    /// started again: the bridge stops and resumes reading the container's output, so a slow
    /// reader of `yes` holds the container's writes, not clabd's memory.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sink?.clientWritable(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Where a hijacked client's input goes (on the client's event loop).
protocol StdinSink: AnyObject {
    func stdin(_ buffer: ByteBuffer)
    func stdinClosed()
    func clientGone()
    /// Backpressure: stop reading the output while the client is not writable.
    func clientWritable(_ writable: Bool)
}
