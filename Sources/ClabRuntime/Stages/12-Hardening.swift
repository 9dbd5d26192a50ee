import ClabDevices
import ClabHost
import ClabImages
import ClabSpec
import ClabSys

/// Stage 12's options, as `docker run` spells them: `--cap-add`, `--cap-drop`,
/// `--security-opt seccomp=FILE|unconfined`, `--security-opt no-new-privileges=false`,
/// `--read-only`, `--userns host`, and clab's `--time-offset`.
public struct SecurityRequest: Sendable, Equatable {
    public var capAdd: [String] = []
    public var capDrop: [String] = []
    public var seccomp: SeccompChoice = .dockerDefault
    public var noNewPrivileges = true
    public var readOnlyRoot = false
    /// `--userns host`: no user namespace; container root is the host's root, held back by
    /// capabilities, seccomp and the device rules alone (Docker's default).
    public var hostUserNamespace = false
    public var timeOffsets: TimeOffsets?

    public init() {}

    /// Whether any option differs from stage 12's defaults (an error below stage 12).
    public var isDefault: Bool { self == SecurityRequest() }

    /// Parses `--security-opt` values: `seccomp=unconfined`, `seccomp=FILE`, `no-new-privileges[=true|false]`.
    public mutating func apply(securityOpt: String) throws {
        let usage = "use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges[=true|false]"
        if securityOpt.hasPrefix("seccomp=") || securityOpt.hasPrefix("seccomp:") {
            let value = String(securityOpt.dropFirst(8))
            guard !value.isEmpty else {
                throw ClabError("--security-opt \(securityOpt): no profile: \(usage)", exitCode: 2)
            }
            seccomp = value == "unconfined" ? .unconfined : .file(value)
            return
        }
        switch securityOpt {
        case "no-new-privileges", "no-new-privileges=true", "no-new-privileges:true": noNewPrivileges = true
        case "no-new-privileges=false", "no-new-privileges:false": noNewPrivileges = false
        default:
            throw ClabError("--security-opt \(securityOpt): clab does not know this option: \(usage)", exitCode: 2)
        }
    }
}

/// Which seccomp filter a stage-12 container gets.
public enum SeccompChoice: Sendable, Equatable {
    case dockerDefault
    case unconfined
    case file(String)
}

extension Runtime {
    /// Docker's device allow-list from stage 12 (the v1 devices controller, or on v2 a BPF
    /// program 8-Cgroups attaches with the cgroups); nil before.
    static func deviceRules(for stage: Stage) -> [DeviceRule]? {
        stage.hardens ? DeviceRule.dockerDefault : nil
    }

    /// Stage 12's settings for the spec, or nil below stage 12 (where any of its options is an
    /// error). Checks everything before anything is made: a bad capability name or profile
    /// leaves nothing behind.
    func hardeningPlan(_ request: RunRequest) throws -> Hardening? {
        let security = request.security
        guard request.stage.hardens else {
            if !security.isDefault {
                throw ClabError(
                    "--cap-add, --cap-drop, --security-opt, --read-only, --userns and --time-offset need stage 12: hardening arrives at stage 12",
                    exitCode: 2)
            }
            return nil
        }
        var h = Hardening()
        h.capabilities = try Capability.resolve(
            base: Capability.dockerDefault, add: security.capAdd, drop: security.capDrop)
        h.noNewPrivileges = security.noNewPrivileges
        h.readOnlyRoot = security.readOnlyRoot
        h.timeOffsets = security.timeOffsets
        if security.hostUserNamespace {
            // Without a user namespace init cannot give root what clab itself lacks (capset: EPERM):
            // `ALL` means all that clab holds; a capability named outright must be held.
            let held = Host.heldCapabilities() ?? Set(Capability.allCases)
            let named = Set(security.capAdd.compactMap(Capability.init(name:)))
            if let missing = named.subtracting(held).sorted().first {
                throw ClabError(
                    "--cap-add \(missing.name): clab itself does not hold CAP_\(missing.name) (its bounding set lacks it), so real root in the container cannot get it",
                    exitCode: 2)
            }
            h.capabilities.formIntersection(held)
            // Container root is then the host's root: only clab's own busybox may run so, never
            // an image someone imported or built (its programs would hold host credentials).
            let ref = try ImageRef.parse(request.image)
            guard ref.name == ImageStore.baseName, ref.tag == "latest", request.layersOverride == nil else {
                throw ClabError(
                    "--userns host runs the image's programs as the host's real root: clab allows it only for its built-in busybox image, not '\(request.image)'",
                    exitCode: 2)
            }
            // Real root's writable layer may hold setuid-root files and device nodes: it must not
            // outlive the container on the host.
            guard request.keepName == nil, request.rwDir == nil else {
                throw ClabError(
                    "--keep with --userns host would leave real root's files (setuid programs, device nodes) on the host: run it without --keep",
                    exitCode: 2)
            }
        }
        let (name, filter) = try SeccompPolicy.compile(
            security.seccomp, capabilities: h.capabilities, cacheDir: layout.root + "/seccomp")
        h.seccompName = name
        h.seccompFilter = filter
        return h
    }
}
