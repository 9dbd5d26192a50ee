import CShims
import ClabSys
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

    /// The runtime-spec version of the state documents clab writes (ClabRuntime's OCIBundle.ociVersion).
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
