import ArgumentParser
import ClabHost
import ClabRuntime
import ClabSys
import Dispatch
import FoundationEssentials
import Glibc

/// `clab push|pull|login|logout`, run by clabd (clab execve's it: NIO stays out of clab).
public enum RegistryCommands {
    public static let names: Set<String> = ["push", "pull", "login", "logout"]

    /// Parses and runs one command; returns the exit status. Errors are one line on stderr.
    /// Call on the main thread before anything else runs (before the first `await`): the
    /// signal mask is per thread and threads inherit it, so only there does it cover them all.
    public static func prepare() { Interrupt.install() }

    /// Runs `body` on the concurrency pool and waits for it on the calling thread: clabd's
    /// main.swift stays synchronous, so no pool thread exists before `prepare()` set the mask.
    public static func blocking(_ body: @escaping @Sendable () async -> Int32) -> Int32 {
        final class Box: @unchecked Sendable { var status: Int32 = 0 }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.status = await body()  // read only after `done` is signalled
            done.signal()
        }
        done.wait()
        return box.status
    }

    public static func main(_ arguments: [String]) async -> Int32 {
        do {
            var command = try RegistryRoot.parseAsRoot(arguments)
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as ClabError {
            line("clab: \(error.message)")
            return error.exitCode
        } catch let error as ExitCode {
            return error.rawValue
        } catch {
            let code = RegistryRoot.exitCode(for: error)
            if code == .success {
                print(RegistryRoot.fullMessage(for: error))
                return 0
            }
            let message = RegistryRoot.message(for: error)
            line("clab: " + (message.split(separator: "\n").first.map(String.init) ?? message))
            return code.rawValue
        }
    }

    static func line(_ text: String) {
        let bytes = Array((ShownText.lines(text) + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}

struct RegistryRoot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clab", abstract: "Registry commands (Distribution API v2).",
        subcommands: [PushCommand.self, PullCommand.self, LoginCommand.self, LogoutCommand.self])
}

struct RootOption: ParsableArguments {
    @Option(name: .long, help: "State directory (default /var/lib/clab, or $CLAB_ROOT).")
    var root: String?

    var layout: StateLayout { StateLayout.resolve(rootOption: root) }

    func validate() throws {
        if root == "" { throw ValidationError("--root is empty: give the state directory, e.g. --root /tmp/clab") }
    }
}

/// Progress for a terminal: one line per layer when its status changes (not per chunk).
final class ProgressPrinter: Sendable {
    let quiet: Bool
    init(quiet: Bool) { self.quiet = quiet }

    func callAsFunction(_ message: ProgressMessage) {
        guard !quiet, let status = message.status, message.progressDetail?.current == nil else { return }
        RegistryCommands.line(message.id.map { "\($0): \(status)" } ?? status)
    }
}

/// What push and pull share: -q, --verbose, --root, and what they make of them (the service,
/// after the reference and root are checked; the progress lines; the verbose log).
struct TransferOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print only the result: the digest (push) or the image reference (pull).")
    var quiet = false

    @Flag(help: "Also print each step: what happens to each blob (push), the import's steps (pull).")
    var verbose = false

    @OptionGroup var global: RootOption

    func service(for image: String) throws -> RegistryService {
        _ = try RegistryReference(image)
        try Runtime.requireRoot()
        return RegistryService(layout: global.layout)
    }

    var progress: ProgressSink {
        let printer = ProgressPrinter(quiet: quiet)
        return { printer($0) }
    }

    var log: @Sendable (String) -> Void {
        let verbose = verbose
        return { if verbose { RegistryCommands.line($0) } }
    }
}

struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract:
            "Push an image to a registry: clab push localhost:5000/NAME[:TAG] (tag it first with `clab image tag`).")

    @Argument(help: "REGISTRY/NAME[:TAG] of an image in the store.")
    var image: String

    @Option(
        name: .customLong("chunk-size"),
        help: "Upload blobs larger than this in PATCH chunks of this size, e.g. 64K (default 16M).")
    var chunkSize: String?

    @OptionGroup var options: TransferOptions

    func run() async throws {
        let chunk = try chunkSize.map { Int(try parseByteSize($0, option: "--chunk-size")) }
        var service = try options.service(for: image)
        if let chunk {
            guard chunk >= 1024 else { throw ClabError("--chunk-size must be at least 1K", exitCode: 2) }
            service.chunkSize = chunk
        }
        let pushed = try await service.push(image, progress: options.progress, log: options.log)
        print(options.quiet ? pushed.digest : "\(pushed.ref) \(pushed.digest)")
    }
}

struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull an image from a registry into the store: clab pull localhost:5000/NAME[:TAG|@sha256:DIGEST].",
        discussion:
            "Every blob is hashed as it arrives and refused unless it matches its digest; layers go through the same import as `clab image import` (device nodes refused, size capped). Then `clab run REF` runs it."
    )

    @Argument(help: "REGISTRY/NAME[:TAG] or REGISTRY/NAME@sha256:DIGEST")
    var image: String

    @Option(
        name: .customLong("max-size"), parsing: .unconditional,
        help: "Refuse an image whose layers unpack to more than this, e.g. 20G (default 8G).")
    var maxSize: String?

    @OptionGroup var options: TransferOptions

    func run() async throws {
        let limit = try maxSize.map { Int(try parseByteSize($0, option: "--max-size")) }
        var service = try options.service(for: image)
        if let limit { service.maxSize = limit }
        let pulled = try await service.pull(image, progress: options.progress, log: options.log)
        print(options.quiet ? "\(pulled.ref)" : "\(pulled.ref) \(pulled.digest) image \(pulled.id.prefix(19))")
    }
}

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Log in to a registry: the credentials are tried, then stored (0600) in <root>/registry/config.json.")

    @Argument(help: "HOST[:PORT] of the registry, e.g. localhost:5000")
    var registry: String

    @Option(name: .shortAndLong, help: "User name (asked on the terminal if left out).")
    var username: String?

    @Flag(name: .customLong("password-stdin"), help: "Read the password from stdin (a pipe), not the terminal.")
    var passwordStdin = false

    @OptionGroup var global: RootOption

    func run() async throws {
        let host = try RegistryReference.parseRegistry(registry)
        try Runtime.requireRoot()
        let tty = isatty(0) == 1
        guard passwordStdin || tty else {
            throw ClabError(
                "no terminal to ask for the password: use --password-stdin (echo PASSWORD | clab login -u USER --password-stdin \(host))",
                exitCode: 2)
        }
        guard let user = try username ?? Terminal.ask("Username: ", echo: true), !user.isEmpty else {
            throw ClabError("no user name: give -u USER", exitCode: 2)
        }
        guard !user.contains(":") else { throw ClabError("a user name cannot contain ':'", exitCode: 2) }
        let password = try passwordStdin ? Terminal.readAllStdin() : (Terminal.ask("Password: ", echo: false) ?? "")
        guard !password.isEmpty else { throw ClabError("empty password: nothing stored", exitCode: 2) }
        let auth = RegistryAuth(username: user, password: password)
        try await RegistryClient(registry: host, auth: auth).ping()
        let store = CredentialStore(layout: global.layout)
        try store.store(auth, for: host)
        RegistryCommands.line("note: the password is stored base64'd (not encrypted) in \(store.path), mode 0600")
        print("Login Succeeded")
    }
}

struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout", abstract: "Forget the credentials stored for a registry.")

    @Argument(help: "HOST[:PORT] of the registry")
    var registry: String

    @OptionGroup var global: RootOption

    func run() async throws {
        let host = try RegistryReference.parseRegistry(registry)
        try Runtime.requireRoot()
        if try CredentialStore(layout: global.layout).remove(host) {
            print("Removing login credentials for \(host)")
        } else {
            print("Not logged in to \(host)")
        }
    }
}

enum Terminal {
    /// A line from the terminal, echo off for a password.
    static func ask(_ prompt: String, echo: Bool) throws -> String? {
        RegistryCommands.line(prompt.trimmingSpaces)
        var saved = termios()
        let isTTY = tcgetattr(0, &saved) == 0
        if isTTY && !echo {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSANOW, &quiet)
        }
        defer { if isTTY && !echo { tcsetattr(0, TCSANOW, &saved) } }
        return readLine(strippingNewline: true)
    }

    /// stdin up to EOF, without the trailing newline (`echo pw | clab login --password-stdin`).
    static func readAllStdin() throws -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw SyscallError("read stdin") }
            if n == 0 { break }
            bytes += buffer[0..<n]
            guard bytes.count <= 64 << 10 else {
                throw ClabError("the password on stdin is longer than 64 KiB", exitCode: 2)
            }
        }
        var text = String(decoding: bytes, as: UTF8.self)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return text
    }
}

/// Ctrl-C or SIGTERM during a push or pull: the scratch directories this process made
/// (`.tmp-*-<pid>` in images/ and layers/) go before it exits, as `clab gc` would remove them.
enum Interrupt {
    /// The signals to catch: those not ignored on entry (a background job's SIGINT stays ignored).
    nonisolated(unsafe) static var caught = sigset_t()

    /// The signals are blocked before any other thread exists (NIO's and the concurrency pool's
    /// threads inherit the mask) and one thread waits for them with sigwait: it cleans up, then
    /// lets the signal act. (A handler could not walk directories: that is not async-signal-safe.)
    static func install() {
        sigemptyset(&caught)
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            var old = sigaction()
            sigaction(sig, nil, &old)
            // SIG_IGN is the handler address 1.
            if unsafeBitCast(old.__sigaction_handler.sa_handler, to: Int.self) == 1 { continue }
            sigaddset(&caught, sig)
        }
        pthread_sigmask(SIG_BLOCK, &caught, nil)
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { _ in Interrupt.wait() }, nil) == 0 else { return }
        pthread_detach(thread)
    }

    static func wait() -> UnsafeMutableRawPointer? {
        var set = caught
        var sig: Int32 = 0
        guard sigwait(&set, &sig) == 0 else { return nil }
        cleanUp()
        signal(sig, SIG_DFL)
        var one = sigset_t()
        sigemptyset(&one)
        sigaddset(&one, sig)
        pthread_sigmask(SIG_UNBLOCK, &one, nil)
        kill(getpid(), sig)
        return nil
    }

    /// Only names ending in this process's pid, in clab's own directories.
    static func cleanUp() {
        let layout = StateLayout.resolve(rootOption: Self.rootFromArguments())
        let suffix = "-\(getpid())"
        for dir in [layout.imagesDir, layout.layersDir] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            where name.hasPrefix(".tmp-") && name.hasSuffix(suffix) {
                try? FS.removeTree(dir + "/" + name)
            }
        }
    }

    static func rootFromArguments() -> String? {
        let args = CommandLine.arguments
        for (i, arg) in args.enumerated() {
            if arg == "--root", i + 1 < args.count { return args[i + 1] }
            if arg.hasPrefix("--root=") { return String(arg.dropFirst(7)) }
        }
        return nil
    }
}
