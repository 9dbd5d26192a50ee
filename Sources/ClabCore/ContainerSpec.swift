import Foundation
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
/// to init (as JSON over the sync socket), so both sides act on the same facts.
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

    public var stage: Stage { Stage.all[stageNumber - 1] }
    public var rootfsMountPoint: String { bundleDir + "/rootfs" }

    /// A short random id, also the default hostname (as Docker does).
    public static func newID() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The default command: an interactive shell whose prompt names the stage.
    public static func defaultShellEnv(stage: Stage) -> [String] {
        ["PS1=[clab stage \(stage.number): \(stage.title)] \\w # "]
    }

    /// The environment a container starts with: a clean one, not the host's.
    public static func baseEnv(stage: Stage, hostname: String) -> [String] {
        var env = ["PATH=\(defaultPath)", "HOME=/root", "HOSTNAME=\(hostname)", "CLAB_STAGE=\(stage.number)"]
        if let term = ProcessInfo.processInfo.environment["TERM"] { env.append("TERM=\(term)") }
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
