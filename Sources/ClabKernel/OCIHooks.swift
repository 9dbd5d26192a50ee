import CShims
import Glibc

/// config.json's `hooks` (runtime-spec config.md, "POSIX-platform Hooks"): programs the runtime
/// runs at points of the container's lifecycle, each with the container's state JSON on its
/// stdin. Where each runs and what its failure does (runtime.md, "Lifecycle"):
///
/// | hook            | when                                   | where it runs             | if it fails                  |
/// |-----------------|----------------------------------------|---------------------------|------------------------------|
/// | prestart        | create, namespaces made, before init's  | the runtime's namespaces  | create fails, container gone |
/// |                 | filesystem work (deprecated)            |                           |                              |
/// | createRuntime   | create, right after prestart            | the runtime's namespaces  | create fails, container gone |
/// | createContainer | create, mounts made, before pivot_root  | the container's (init)    | create fails, container gone |
/// | startContainer  | start, before the process is executed   | the container's (init)    | start fails, container gone  |
/// | poststart       | start, once the process runs            | the runtime's namespaces  | a warning; start succeeds    |
/// | poststop        | delete, once the container is gone      | the runtime's namespaces  | a warning; delete succeeds   |
///
/// A hook's `path` is absolute, `args` its argv (argv[0] included), `env` its whole
/// environment, `timeout` seconds after which it is killed (and counts as failed).
/// These come from config.json, which the caller (podman, a user) trusts: the runtime's own
/// hooks run with the runtime's credentials, as in runc. The container's own two run inside
/// its namespaces with its credentials, before the lock-down of stage 12.
public struct OCIHooks: Codable, Sendable, Equatable {
    public var prestart: [Hook] = []
    public var createRuntime: [Hook] = []
    public var createContainer: [Hook] = []
    public var startContainer: [Hook] = []
    public var poststart: [Hook] = []
    public var poststop: [Hook] = []

    public init() {}

    public enum Phase: String, CaseIterable, Sendable {
        case prestart, createRuntime, createContainer, startContainer, poststart, poststop
    }

    public subscript(phase: Phase) -> [Hook] {
        get {
            switch phase {
            case .prestart: prestart
            case .createRuntime: createRuntime
            case .createContainer: createContainer
            case .startContainer: startContainer
            case .poststart: poststart
            case .poststop: poststop
            }
        }
        set {
            switch phase {
            case .prestart: prestart = newValue
            case .createRuntime: createRuntime = newValue
            case .createContainer: createContainer = newValue
            case .startContainer: startContainer = newValue
            case .poststart: poststart = newValue
            case .poststop: poststop = newValue
            }
        }
    }

    public var isEmpty: Bool { Phase.allCases.allSatisfy { self[$0].isEmpty } }

    /// More is no config anyone writes; each hook is a process started in the lifecycle's path.
    public static let maxPerPhase = 64

    public struct Hook: Codable, Sendable, Equatable {
        public var path: String
        public var args: [String]
        public var env: [String]
        /// Seconds; nil: no limit.
        public var timeout: Int?

        public init(path: String, args: [String] = [], env: [String] = [], timeout: Int? = nil) {
            self.path = path
            self.args = args
            self.env = env
            self.timeout = timeout
        }

        /// What the runtime names in an error: the path and the arguments after argv[0].
        public var shown: String { ([path] + args.dropFirst()).joined(separator: " ") }
    }

    /// The runtime-spec version of the state documents clab writes (ClabCore's OCIBundle.ociVersion).
    public static let stateVersion = "1.0.2"

    /// runtime.md's state: ociVersion, id, status, pid (0: none, left out), bundle, annotations.
    public static func stateJSON(
        id: String, status: String, pid: Int32, bundle: String, annotations: [String: String]
    ) -> String {
        var out = "{\"ociVersion\":\(JSONText.quoted(stateVersion)),\"id\":\(JSONText.quoted(id))"
        out += ",\"status\":\(JSONText.quoted(status))"
        if pid > 0 { out += ",\"pid\":\(pid)" }
        out += ",\"bundle\":\(JSONText.quoted(bundle))"
        if !annotations.isEmpty {
            let fields = annotations.sorted { $0.key < $1.key }.map {
                "\(JSONText.quoted($0.key)):\(JSONText.quoted($0.value))"
            }
            out += ",\"annotations\":{" + fields.joined(separator: ",") + "}"
        }
        return out + "}"
    }

    /// The rules before the spec leaves clab (the host half names config.json's field first).
    func validate() throws {
        for phase in Phase.allCases {
            guard self[phase].count <= Self.maxPerPhase else {
                throw ClabError("hooks.\(phase.rawValue): at most \(Self.maxPerPhase) hooks")
            }
            for (i, hook) in self[phase].enumerated() {
                let at = "hooks.\(phase.rawValue)[\(i)]"
                try ContainerSpec.checkText(hook.path, "\(at).path")
                guard hook.path.hasPrefix("/") else { throw ClabError("\(at).path \(hook.path) is not absolute") }
                for arg in hook.args + hook.env { try ContainerSpec.checkText(arg, at) }
                if let t = hook.timeout, t <= 0 || t > 86400 {
                    throw ClabError("\(at).timeout \(t) is not 1-86400 seconds")
                }
            }
        }
    }

    func encode(_ w: inout WireWriter) {
        for phase in Phase.allCases {
            w.u32(self[phase].count)
            for hook in self[phase] {
                w.str(hook.path)
                w.list(hook.args)
                w.list(hook.env)
                w.u32(hook.timeout.map { $0 + 1 } ?? 0)
            }
        }
    }

    static func decode(_ r: inout WireReader) throws(SpecWireError) -> OCIHooks {
        var hooks = OCIHooks()
        for phase in Phase.allCases {
            let n = try r.count()
            guard n <= maxPerPhase else { throw SpecWireError("field 'oci' has \(n) \(phase.rawValue) hooks") }
            for _ in 0..<n {
                let path = try r.str()
                let args = try r.list()
                let env = try r.list()
                let timeout = try r.u32()
                hooks[phase].append(Hook(path: path, args: args, env: env, timeout: timeout == 0 ? nil : timeout - 1))
            }
        }
        return hooks
    }
}

// MARK: - Inside the container (clab-init)

extension OCIHooks {
    /// Runs `hooks` from clab-init, in the container's namespaces (createContainer before
    /// pivot_root, with the host's paths still visible; startContainer just before the
    /// process). `state`: the state JSON the host prepared (OCISetup.hookState), given on each
    /// hook's stdin. A hook that fails or outlives its timeout fails the container, named.
    static func runInContainer(_ hooks: [Hook], phase: Phase, state: String) throws {
        for (i, hook) in hooks.enumerated() {
            let status = try runOne(hook, state: state)
            guard status == 0 else {
                let why = status < 0 ? "was killed after its timeout of \(hook.timeout ?? 0) s" : "exited \(status)"
                throw ClabError("hooks.\(phase.rawValue)[\(i)] (\(hook.shown)) \(why)")
            }
        }
    }

    /// fork, stdin a pipe holding `state`, execve; then wait, killing it at its timeout.
    /// Returns its exit status (128+signal for a signal), or -1 when its timeout killed it.
    /// Init is single-threaded, so fork is safe here.
    private static func runOne(_ hook: Hook, state: String) throws -> Int32 {
        let pipeFDs = try makePipe()
        let pid = fork()
        if pid == 0 {
            _ = dup2(pipeFDs.read, 0)
            let argv = hook.args.isEmpty ? [hook.path] : hook.args
            _ = withCStrings(argv) { a in withCStrings(hook.env) { e in execve(hook.path, a, e) } }
            _exit(127)
        }
        close(pipeFDs.read)
        guard pid > 0 else {
            close(pipeFDs.write)
            throw SyscallError("fork for hook \(hook.path)")
        }
        // The state is a few hundred bytes: far below a pipe's buffer, so this never blocks.
        // A hook that does not read it gets EPIPE on our side, which is ignored (MSG_NOSIGNAL
        // does not apply to write(2): SIGPIPE is ignored in init around it).
        let previous = signal(SIGPIPE, SIG_IGN)
        _ = Array(state.utf8).withUnsafeBytes { write(pipeFDs.write, $0.baseAddress, $0.count) }
        close(pipeFDs.write)
        signal(SIGPIPE, previous)
        var waited = 0.0
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { throw SyscallError("waitpid for hook \(hook.path)") }
            if let limit = hook.timeout, waited >= Double(limit) {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return -1
            }
            usleep(10_000)
            waited += 0.01
        }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}
