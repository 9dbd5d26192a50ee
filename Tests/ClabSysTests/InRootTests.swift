import ClabSys
import Foundation
import Glibc
import Testing

/// InRoot: a path inside a container's root is resolved there, symlinks and all, and what it
/// creates stays inside. No root needed: the root is a directory in /tmp.
@Suite("InRoot: paths resolve inside the root")
struct InRootTests {
    @Test func volumeTargetsResolveInsideTheRoot() throws {
        // An image whose /data points far up: the mount target must stay inside the root.
        let root = "/tmp/clab-resolve-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/data", withDestinationPath: "../../..")
        try FileManager.default.createSymbolicLink(atPath: root + "/abs", withDestinationPath: "/etc")
        // Dangling links: what they name is made inside the root, never on the host.
        let outside = "/tmp/clab-dangling-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createSymbolicLink(atPath: root + "/dangle", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: root + "/dfile", withDestinationPath: outside + "-file")
        let inRoot = try InRoot(root)
        defer { inRoot.close() }
        for (target, kind, expected) in [
            ("/data", InRoot.Kind.directory, root), ("/abs", .directory, root + "/etc"),
            ("/data/new/sub", .directory, root + "/new/sub"), ("/dangle", .directory, root + outside),
            ("/dfile", .file, root + outside + "-file"), ("/../../x/./y/..", .directory, root + "/x"),
        ] {
            let fd = try inRoot.resolveCreating(target, kind)
            defer { close(fd) }
            #expect(FS.readLink("/proc/self/fd/\(fd)") == expected, "\(target)")
        }
        #expect(!FileManager.default.fileExists(atPath: outside))
        #expect(!FileManager.default.fileExists(atPath: outside + "-file"))
        // Nothing was created outside.
        #expect(!FileManager.default.fileExists(atPath: "/new/sub"))
    }
}
