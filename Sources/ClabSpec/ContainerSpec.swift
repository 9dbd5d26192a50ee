import ClabSys
import Glibc

/// A contiguous id range: `count` ids starting at `inside` in the container are `host`... on
/// the host. One line of /proc/<pid>/uid_map.
public struct IDMapping: Codable, Sendable, Equatable {
    public var inside: UInt32
    public var host: UInt32
    public var count: UInt32

    public static let defaultRange = IDMapping(inside: 0, host: 100_000, count: 65_536)

    public var mapLine: String { "\(inside) \(host) \(count)\n" }
}

/// Everything a container needs, decided before it starts. The parent builds it, and sends it
/// to init (in `wire` form over the sync socket, SpecWire.swift), so both sides act on the same facts.
public struct ContainerSpec: Codable, Sendable, Equatable {
    public var id: String
    public var stageNumber: Int
    public var hostname: String
    /// The host directory that becomes the container's `/`.
    public var imageRoot: String
    /// containers/<id>: runtime state and the rootfs mount point.
    public var bundleDir: String
    public var command: [String]
    public var env: [String]
    /// Set from stage 7 on: container ids 0... map to unprivileged host ids.
    public var idMapping: IDMapping?
    /// From stage 8 on: the container's cgroup directories on the host, by the name they get
    /// under /sys/fs/cgroup inside ("memory", "cpu", ... on v1; "" for the whole v2 tree).
    public var cgroupMounts: [String: String] = [:]
    /// From stage 9 on: the overlay that becomes the root.
    public var overlay: OverlaySpec?
    /// From stage 10 on: volumes and bind mounts, mounted in this order.
    public var volumes: [VolumeSpec] = []
    /// From stage 9: the image's working directory (made if missing).
    public var workdir: String?
    /// From stage 11: whose network namespace the container uses (`--net host|container:NAME`).
    public var network: NetworkNamespace = .own
    /// From stage 12: capabilities, no_new_privs, seccomp, masked paths (Hardening.swift).
    public var hardening: Hardening?
    /// An OCI bundle's mounts, rlimits, user and read-only root (`clab run --bundle`, OCISetup.swift).
    public var oci: OCISetup?

    public init(
        id: String, stageNumber: Int, hostname: String, imageRoot: String, bundleDir: String, command: [String],
        env: [String], idMapping: IDMapping?
    ) {
        self.id = id
        self.stageNumber = stageNumber
        self.hostname = hostname
        self.imageRoot = imageRoot
        self.bundleDir = bundleDir
        self.command = command
        self.env = env
        self.idMapping = idMapping
    }

    public var stage: Stage { Stage.all[stageNumber - 1] }

    /// The stage's clone3 flags, without CLONE_NEWNET when the container uses the host's or
    /// another container's network namespace, and without CLONE_NEWUSER under `--userns host`
    /// (stage 12 for real root: no id mapping).
    public var cloneFlags: UInt64 {
        var flags = stage.cloneFlags
        if network != .own { flags &= ~Namespace.net.cloneFlag }
        if !ownsUserNamespace { flags &= ~Namespace.user.cloneFlag }
        return flags
    }

    /// A user namespace of its own: from stage 7, unless `--userns host` left the ids unmapped.
    public var ownsUserNamespace: Bool { stage.has(.user) && idMapping != nil }
    public var rootfsMountPoint: String { bundleDir + "/rootfs" }

    /// A short random id, also the default hostname (as Docker does).
    public static func newID() -> String {
        var rng = SystemRandomNumberGenerator()
        // Twelve hex digits from a table: String(_:radix:) is generic and costs a runtime
        // conformance lookup on every container start.
        let hex = Array("0123456789abcdef".utf8)
        var digits: [UInt8] = []
        for _ in 0..<6 {
            let byte = UInt8.random(in: 0...255, using: &rng)
            digits += [hex[Int(byte >> 4)], hex[Int(byte & 0xf)]]
        }
        return String(decoding: digits, as: UTF8.self)
    }

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The default command: an interactive shell whose prompt names the stage.
    public static func defaultShellEnv(stage: Stage) -> [String] {
        ["PS1=[clab stage \(stage.number): \(stage.title)] \\w # "]
    }

    /// The environment a container starts with: a clean one, not the host's (TERM aside).
    public static func baseEnv(stage: Stage, hostname: String) -> [String] {
        var env = ["PATH=\(defaultPath)", "HOME=/root", "HOSTNAME=\(hostname)", "CLAB_STAGE=\(stage.number)"]
        if let term = getenv("TERM") { env.append("TERM=" + String(cString: term)) }
        return env
    }

    /// Validates a hostname the way sethostname(2) and RFC 1123 would accept it.
    public static func validateHostname(_ name: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
        guard !name.isEmpty, name.utf8.count <= 64, name.allSatisfy({ allowed.contains($0) }),
            !name.hasPrefix("-"), !name.hasPrefix(".")
        else {
            throw ClabError(
                "invalid hostname '\(name)': use 1-64 letters, digits, '-' or '.', not starting with '-' or '.'",
                exitCode: 2)
        }
    }
}

/// The layers of a stage-9 root: read-only lower directories, top layer first (overlayfs's
/// order), and the container's own writable upper directory with its work directory.
public struct OverlaySpec: Codable, Sendable, Equatable {
    public var lowers: [String]
    public var upper: String
    public var work: String

    public init(lowers: [String], upper: String, work: String) {
        self.lowers = lowers
        self.upper = upper
        self.work = work
    }

    public var options: String {
        // userxattr: mounted inside a user namespace, overlayfs may keep its bookkeeping (opaque
        // directories, whiteout markers) only in user.overlay.* xattrs; without it, removing a
        // directory that comes from a layer fails with EIO.
        "lowerdir=\(lowers.joined(separator: ":")),upperdir=\(upper),workdir=\(work),userxattr"
    }
}

/// One `-v`: a host directory (a managed volume's data, or a bind source) at a path inside.
public struct VolumeSpec: Codable, Sendable, Equatable {
    public var source: String
    public var target: String
    public var readOnly: Bool

    public init(source: String, target: String, readOnly: Bool) {
        self.source = source
        self.target = target
        self.readOnly = readOnly
    }
}

/// Whose network namespace a container lives in (stage 11's models: bridge and none have their
/// own; host shares the host's; container:NAME joins a running container's).
public enum NetworkNamespace: UInt8, Codable, Sendable {
    case own = 0
    case host = 1
    case joined = 2
}
