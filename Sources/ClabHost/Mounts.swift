import ClabSys
import Glibc

/// One line of /proc/<pid>/mountinfo (proc(5)).
public struct MountInfo: Sendable, Equatable {
    public let id: Int
    public let parentID: Int
    public let root: String
    public let mountPoint: String
    public let options: String
    public let optionalFields: [String]
    public let fsType: String
    public let source: String
    /// The filesystem's own options, last on the line: for a v1 cgroup, its controllers.
    public var superOptions: String = ""

    /// "shared:N", "master:N" or none (private): what mount_namespaces(7) calls propagation.
    public var propagation: String {
        let tags = optionalFields.filter { $0.hasPrefix("shared:") || $0.hasPrefix("master:") }
        return tags.isEmpty ? "private" : tags.joined(separator: " ")
    }
}

public enum Mounts {
    /// mountinfo escapes space, tab, newline and backslash as octal.
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var chars = Array(field.utf8)[...]
        while let c = chars.popFirst() {
            if c == UInt8(ascii: "\\"), chars.count >= 3,
                let v = UInt8(String(decoding: chars.prefix(3), as: UTF8.self), radix: 8)
            {
                bytes.append(v)
                chars = chars.dropFirst(3)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func parse(_ text: String) -> [MountInfo] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 3,
                let id = Int(fields[0]), let parent = Int(fields[1])
            else { return nil }
            return MountInfo(
                id: id, parentID: parent, root: unescape(fields[3]),
                mountPoint: unescape(fields[4]), options: String(fields[5]),
                optionalFields: fields[6..<dash].map(String.init),
                fsType: String(fields[dash + 1]), source: unescape(fields[dash + 2]),
                superOptions: fields.count > dash + 3 ? String(fields[dash + 3]) : "")
        }
    }

    public static func table(pid: String = "self") -> [MountInfo] {
        parse(FS.read("/proc/\(pid)/mountinfo") ?? "")
    }

    /// Mount points at or below `path` in this process's namespace, deepest first.
    public static func mounts(under path: String) -> [String] {
        let prefix = path.hasSuffix("/") ? path : path + "/"
        let points = table().map(\.mountPoint).filter { $0 == path || $0.hasPrefix(prefix) }
        return Array(Set(points)).sorted { $0.count > $1.count }
    }

    /// Detaches every mount at or below `path` (stacked ones too). Returns what it unmounted.
    @discardableResult
    public static func unmountAll(under path: String) -> [String] {
        var removed: [String] = []
        // A mount point can hold a stack; go round until nothing is left (bounded).
        for _ in 0..<16 {
            let points = mounts(under: path)
            if points.isEmpty { break }
            for point in points where umount2(point, Int32(MNT_DETACH)) == 0 {
                removed.append(point)
            }
        }
        return removed
    }
}
