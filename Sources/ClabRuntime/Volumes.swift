import ClabHost
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// Managed volumes: `volumes/<name>/_data`, user data that outlives every container, `clab rm`
/// and `clab gc`. Their data directory belongs to the mapped root (uid 100000 on the host) so
/// user-namespaced containers, which all stage-10 containers are, can write to it; `volumes/`
/// lets only root and the mapped root in (what a container leaves there, a setuid program, is
/// out of other users' reach: StateLayout.closedDirectories).
public struct VolumeStore: Sendable {
    public let layout: StateLayout

    public init(layout: StateLayout) { self.layout = layout }

    public var dir: String { layout.volumesDir }
    public func dataPath(_ name: String) -> String { dir + "/" + name + "/_data" }

    public static func validateName(_ name: String) throws {
        guard isPlainName(name, uppercase: true) else {
            throw ClabError(
                "invalid volume name '\(name)': use letters, digits, '_', '.' or '-', starting with a letter or digit (a path starts with /)",
                exitCode: 2)
        }
    }

    public func exists(_ name: String) -> Bool { FS.isDirectory(dataPath(name)) }

    /// Creates the volume (owned by `owner` inside, e.g. the mapped root) unless it exists.
    @discardableResult
    public func create(_ name: String, owner: UInt32 = IDMapping.defaultRange.host) throws -> Bool {
        try Self.validateName(name)
        if exists(name) { return false }
        try layout.prepare()
        let tmp = dir + "/.tmp-\(name)-\(getpid())"
        try? FS.removeTree(tmp)
        try FS.makeDirectories(tmp + "/_data")
        guard chown(tmp + "/_data", owner, owner) == 0 else { throw SyscallError("chown \(tmp)/_data") }
        try FS.write("{\"name\":\"\(name)\",\"created\":\(time(nil))}\n", to: tmp + "/volume.json")
        if rename(tmp, dir + "/" + name) != 0 {
            try? FS.removeTree(tmp)
            if !exists(name) { throw SyscallError("rename \(tmp)") }
            return false  // another clab made it at the same moment
        }
        return true
    }

    public func list() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Running containers that mount the volume.
    public func users(_ name: String) -> [String] {
        ContainerState.running(in: layout).filter { ($0.volumes ?? []).contains(dataPath(name)) }.map(\.id)
    }

    public func remove(_ name: String) throws {
        try Self.validateName(name)
        guard exists(name) else { throw ClabError("no volume '\(name)': `clab volume ls` lists them") }
        let using = users(name)
        guard using.isEmpty else {
            throw ClabError(
                "volume '\(name)' is in use by container \(using.joined(separator: ", ")): stop it first")
        }
        try FS.removeTree(dir + "/" + name)
    }
}

/// One `-v` as the user wrote it: `NAME:/path[:ro]` or `/host/dir:/path[:ro]`.
public struct VolumeRequest: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        case named(String)
        case bind(String)
    }

    public var source: Source
    public var target: String
    public var readOnly: Bool

    public init(source: Source, target: String, readOnly: Bool) {
        self.source = source
        self.target = target
        self.readOnly = readOnly
    }

    public static func parse(_ text: String) throws -> VolumeRequest {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var readOnly = false
        if parts.count == 3, parts[2] == "ro" || parts[2] == "rw" {
            readOnly = parts[2] == "ro"
            parts.removeLast()
        }
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ClabError(
                "-v \(text): give SOURCE:TARGET[:ro], e.g. -v data:/data or -v /srv/site:/www:ro", exitCode: 2)
        }
        let source = parts[0]
        try ContainerSpec.checkText(source, "-v: the source")
        try ContainerSpec.checkText(parts[1], "-v: the target")
        guard parts[1].hasPrefix("/") else {
            throw ClabError(
                "-v \(text): the target \(parts[1]) must be an absolute path inside the container", exitCode: 2)
        }
        // `//`, `/.` and `/a/..` are `/` too.
        guard let target = ContainerSpec.volumeTarget(parts[1]) else {
            throw ClabError("-v \(text): a volume cannot replace the container's root", exitCode: 2)
        }
        if source.hasPrefix("/") {
            return VolumeRequest(source: .bind(source), target: target, readOnly: readOnly)
        }
        if source.hasPrefix(".") || source.contains("/") {
            throw ClabError(
                "-v \(text): the bind source \(source) is relative: give an absolute host path, or a volume name without '/'",
                exitCode: 2)
        }
        try VolumeStore.validateName(source)
        return VolumeRequest(source: .named(source), target: target, readOnly: readOnly)
    }
}
