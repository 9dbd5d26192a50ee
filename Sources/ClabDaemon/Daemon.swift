import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix

/// `clabd` (`clab daemon`): a subset of the Docker Engine API on a unix socket, so the real
/// docker CLI and `curl --unix-socket` drive clab's containers. See README "The daemon".
///
/// Security: whoever can write to the socket is root on this host (they choose mounts and
/// capabilities). It is created 0660 root:root, atomically (bound under a temporary name with
/// the mode already set by umask, then renamed into place: there is no moment when another
/// user could connect). TCP is refused unless asked for, and only on a loopback address.
public enum Daemon {
    public static let usage = """
        usage: clabd [--socket PATH] [--tcp 127.0.0.1:PORT] [--root DIR]
          --socket PATH   the unix socket (default /run/clab/clab.sock; 0660 root:root)
          --tcp ADDR:PORT also listen on TCP, loopback only (no TLS: anyone on this host can connect)
          --root DIR      clab's state directory (default /var/lib/clab, or $CLAB_ROOT)
          --debug         print every request (method, path, body) on stderr
        then: DOCKER_HOST=unix://PATH docker ps
        """

    public static func main(_ arguments: [String]) -> Never {
        var socketPath = "/run/clab/clab.sock"
        var tcp: (String, Int)?
        var root: String?
        var debug = false
        var args = arguments[...]
        func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data(("clabd: " + message + "\n").utf8))
            exit(2)
        }
        while let arg = args.popFirst() {
            switch arg {
            case "--socket", "-H":
                guard let value = args.popFirst(), !value.isEmpty else { fail("--socket needs a path") }
                socketPath = value.hasPrefix("unix://") ? String(value.dropFirst(7)) : value
            case "--tcp":
                guard let value = args.popFirst(), let colon = value.lastIndex(of: ":"),
                    let port = Int(value[value.index(after: colon)...]), (1...65535).contains(port)
                else { fail("--tcp needs ADDRESS:PORT, e.g. --tcp 127.0.0.1:2375") }
                let host = String(value[..<colon])
                guard host == "127.0.0.1" || host == "::1" || host == "[::1]" || host == "localhost" else {
                    fail(
                        "--tcp \(value): only a loopback address (127.0.0.1) is allowed: the API is root on this host, and clabd has no TLS"
                    )
                }
                tcp = (
                    host == "localhost" ? "127.0.0.1" : host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")),
                    port
                )
            case "--root":
                guard let value = args.popFirst(), !value.isEmpty else { fail("--root needs a directory") }
                root = value
            case "--debug":
                debug = true
            case "-h", "--help":
                print(usage)
                exit(0)
            default:
                fail("unknown argument \(arg)\n" + usage)
            }
        }
        guard geteuid() == 0 else { fail("clabd must run as root: it creates namespaces, mounts and cgroups") }
        let layout = StateLayout.resolve(rootOption: root)
        do {
            try layout.prepare()
        } catch {
            fail("\(error)")
        }
        signal(SIGPIPE, SIG_IGN)
        let clab = Path.dirname(Resources.executablePath()) + "/clab"
        guard FS.exists(clab) else { fail("no clab beside clabd (\(clab)): install them together") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
        let engine = Engine(layout: layout, rootOption: root, clab: clab, pool: pool, debug: debug)
        engine.startReaper()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let encoder = HTTPResponseEncoder()
                    let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(encoder)
                    try sync.addHandler(decoder)
                    try sync.addHandler(APIHandler(engine: engine, encoder: encoder, decoder: decoder))
                }
            }
        do {
            try FS.makeDirectories(Path.dirname(socketPath), mode: 0o755)
            // Bound aside with mode 0660 (umask), renamed over any stale socket: atomic.
            let temporary = Path.dirname(socketPath) + "/.clabd-\(getpid()).sock"
            unlink(temporary)
            let mask = umask(0o117)
            let channel: Channel
            do {
                channel = try bootstrap.bind(unixDomainSocketPath: temporary).wait()
                umask(mask)
            } catch {
                umask(mask)
                throw error
            }
            guard chown(temporary, 0, 0) == 0, rename(temporary, socketPath) == 0 else {
                unlink(temporary)
                fail("cannot put the socket at \(socketPath): \(String(cString: strerror(errno)))")
            }
            var channels = [channel]
            if let (host, port) = tcp { channels.append(try bootstrap.bind(host: host, port: port).wait()) }
            FileHandle.standardError.write(
                Data(
                    ("clabd: Engine API \(Engine.apiVersion) on unix://\(socketPath)"
                        + (tcp.map { " and tcp://\($0.0):\($0.1)" } ?? "") + " (state \(layout.root))\n").utf8))
            // SIGTERM/SIGINT: close the listeners, remove the socket, exit. Containers live on
            // (their supervisors are theirs, not the daemon's).
            let path = socketPath
            for sig in [SIGTERM, SIGINT] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler {
                    unlink(path)
                    for c in channels { c.close(promise: nil) }
                    exit(0)
                }
                source.resume()
                Self.sources.append(source)
            }
            try channel.closeFuture.wait()
        } catch {
            fail("cannot listen on \(socketPath): \(error)")
        }
        exit(0)
    }

    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []
}
