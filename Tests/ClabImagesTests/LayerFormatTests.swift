import ClabHost
import Foundation
import Glibc
import Testing

@testable import ClabImages

/// A layer's bytes: sha256 against known vectors, and the canonical tar, deterministic and
/// readable by GNU tar. No root: the trees are made in /tmp by whoever runs the tests.
@Suite("layers: sha256 and canonical tar")
struct LayerFormatTests {
    @Test func sha256KnownVectors() {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hex(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Streaming in odd pieces gives the same digest.
        var h = SHA256()
        var rest = million[...]
        while !rest.isEmpty {
            h.update(rest.prefix(777))
            rest = rest.dropFirst(777)
        }
        #expect(h.finalize() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func makeTree(_ dir: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(
            atPath: dir + "/etc/deep/" + String(repeating: "x", count: 120), withIntermediateDirectories: true)
        try "hello\n".write(toFile: dir + "/etc/hello", atomically: false, encoding: .utf8)
        try Data(repeating: 7, count: 70_000).write(to: URL(fileURLWithPath: dir + "/blob"))
        try fm.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "etc/hello")
        chmod(dir + "/etc/hello", 0o640)
    }

    @Test func tarIsDeterministicAndReadableByGNUTar() throws {
        let a = "/tmp/clab-tar-\(UUID().uuidString.prefix(8))"
        let b = a + "-copy"
        let out = a + "-out"
        defer { for d in [a, b, out] { try? FileManager.default.removeItem(atPath: d) } }
        try makeTree(a)
        let copy = try Host.run(["/bin/cp", "-a", a, b])
        #expect(copy.status == 0, "\(copy.output)")
        // A different mtime must not change the digest: content names the layer.
        utime(b + "/etc/hello", nil)
        let digestA = try CanonicalTar(root: a).digest()
        let digestB = try CanonicalTar(root: b).digest()
        #expect(digestA.digest == digestB.digest)
        #expect(digestA.digest.hasPrefix("sha256:"))
        // The bytes are a real tar: sha256sum agrees, and GNU tar extracts the same tree.
        var bytes: [UInt8] = []
        try CanonicalTar(root: a).write { bytes += $0 }
        #expect(bytes.count == digestA.size)
        try Data(bytes).write(to: URL(fileURLWithPath: a + ".tar"))
        defer { try? FileManager.default.removeItem(atPath: a + ".tar") }
        let sum = try Host.run(["/usr/bin/sha256sum", a + ".tar"])
        #expect("sha256:" + (sum.output.split(separator: " ").first.map(String.init) ?? "") == digestA.digest)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let untar = try Host.run(["/bin/tar", "-xpf", a + ".tar", "-C", out])
        #expect(untar.status == 0, "\(untar.output)")
        #expect(try CanonicalTar(root: out).digest().digest == digestA.digest)
        #expect(FileManager.default.fileExists(atPath: out + "/etc/deep/" + String(repeating: "x", count: 120)))
    }
}
