import Foundation
import Glibc
import Testing

@testable import ClabHost
@testable import ClabImages
@testable import ClabRuntime
@testable import ClabSpec
@testable import ClabSys

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
        let copy = try runProcess(["/bin/cp", "-a", a, b])
        #expect(copy.status == 0)
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
        let sum = try runProcess(["/usr/bin/sha256sum", a + ".tar"])
        #expect("sha256:" + (sum.stdout.split(separator: " ").first.map(String.init) ?? "") == digestA.digest)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let untar = try runProcess(["/bin/tar", "-xpf", a + ".tar", "-C", out])
        #expect(untar.status == 0, "\(untar.stderr)")
        #expect(try CanonicalTar(root: out).digest().digest == digestA.digest)
        #expect(FileManager.default.fileExists(atPath: out + "/etc/deep/" + String(repeating: "x", count: 120)))
    }

    @Test func whiteoutsBecomeOCIWhiteoutFiles() throws {
        let dir = "/tmp/clab-wh-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
        #expect(mknod(dir + "/etc/gone", S_IFCHR | 0o600, 0) == 0)
        var bytes: [UInt8] = []
        try CanonicalTar(root: dir).write { bytes += $0 }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + ".tar"))
        defer { try? FileManager.default.removeItem(atPath: dir + ".tar") }
        let list = try runProcess(["/bin/tar", "-tvf", dir + ".tar"])
        #expect(list.stdout.contains("etc/.wh.gone"), "\(list.stdout)")
        #expect(list.stdout.hasPrefix("drwxr-xr-x"), "\(list.stdout)")
    }

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

@Suite("stage 9 · overlay image layers", needsRoot)
struct Stage9Tests {
    @Test func probes() throws {
        let r = try probe(9)
        expectHolds(r, "overlay.root")
        expectHolds(r, "overlay.writes-upper")
        expectHolds(r, "overlay.whiteout")
        expectHolds(r, "overlay.layers-unchanged")
        // The wording counts the image's layers.
        #expect(r["overlay.root"]?.property == "the root is an overlay of the image's 1 layer")
        expectNamespaces(r, stage: 9)
    }

    @Test func layersSurviveAContainerThatWrecksItsRoot() throws {
        try TestEnv.ensureImage()
        let out = try clab(
            "step", "9", "--quiet", "--", "sh", "-c",
            "echo x >> /etc/passwd && mv /etc/hosts /etc/hosts.moved && mv /home /home.moved && rm -rf /usr /etc/group && chmod -R 700 /sbin && echo new > /new && ls / | wc -l"
        )
        #expect(out.status == 0, "\(out.stderr)")
        let store = LayerStore(layout: TestEnv.layout)
        let layers = try ImageStore(layout: TestEnv.layout).layers(ImageStore.baseName)
        for digest in layers {
            #expect(try store.verify(digest), "\(digest) changed")
            let shifted = store.shiftedPath(digest, base: IDMapping.defaultRange.host)
            #expect(try CanonicalTar(root: shifted, idShift: IDMapping.defaultRange.host).digest().digest == digest)
        }
        #expect(FileManager.default.fileExists(atPath: TestEnv.root + "/images/busybox/rootfs/usr/bin"))
        #expect(Mounts.mounts(under: TestEnv.root + "/run").isEmpty)
    }

    @Test func twentyContainersShareOneCopyOfTheLayers() throws {
        let root = TestEnv.root + "/twenty"
        try TestEnv.ensureImage(root: root)
        let seen = Lines()
        let threads = (0..<20).map { _ in
            Thread {
                let out = try? runProcess([
                    TestEnv.clab, "step", "9", "--root", root, "--quiet", "--", "sh", "-c",
                    "grep ' / / ' /proc/self/mountinfo | sed 's/.*lowerdir=//; s/,.*//'; sleep 1",
                ])
                seen.append(out?.stdout.trimmed ?? "failed: \(out?.stderr ?? "")")
            }
        }
        for t in threads { t.start() }
        #expect(eventually(60) { seen.all.count == 20 })
        let distinct = Set(seen.all)
        #expect(distinct.count == 1, "\(distinct)")
        let layerDirs = try FileManager.default.contentsOfDirectory(atPath: root + "/layers/sha256").filter {
            !$0.hasSuffix(".size")
        }
        #expect(layerDirs.count == 1)
        #expect(distinct.first?.hasSuffix(layerDirs.first ?? "?") == true)
    }

    @Test func keptContainerDiffAndRm() throws {
        try TestEnv.ensureImage()
        let name = "kept-\(UUID().uuidString.prefix(6).lowercased())"
        let run = try clab(
            "step", "9", "--quiet", "--name", name, "--keep", "--", "sh", "-c",
            "echo hi > /root/new; rm /bin/ls; echo x >> /etc/passwd")
        #expect(run.status == 0, "\(run.stderr)")
        let diff = try clab("diff", name)
        #expect(diff.stdout == "C /bin\nD /bin/ls\nC /etc\nC /etc/passwd\nC /root\nA /root/new\n", "\(diff.stdout)")
        let again = try clab("step", "9", "--quiet", "--name", name, "--keep", "--", "true")
        #expect(again.status == 2)
        #expect(again.stderr.contains("a container named '\(name)' exists"))
        #expect(try clab("rm", name).stdout == "removed \(name)\n")
        #expect(try clab("diff", name).stderr.contains("no kept container '\(name)'"))
    }
}

@Suite("stage 10 · volumes", needsRoot)
struct Stage10Tests {
    @Test func probes() throws {
        let r = try probe(10)
        expectHolds(r, "volume.data-on-host")
        expectHolds(r, "volume.bind-read-only")
        expectNamespaces(r, stage: 10)
    }

    @Test func dataSurvivesTheContainerRmAndGC() throws {
        try TestEnv.ensureImage()
        let vol = "v-\(UUID().uuidString.prefix(6).lowercased())"
        #expect(
            try clab("step", "10", "--quiet", "-v", "\(vol):/data", "--", "sh", "-c", "echo kept > /data/f").status == 0
        )
        #expect(try clab("gc").status == 0)
        let read = try clab("step", "10", "--quiet", "-v", "\(vol):/v:ro", "--", "cat", "/v/f")
        #expect(read.stdout == "kept\n")
        #expect(try clab("volume", "rm", vol).status == 0)
    }

    @Test func twoContainersSeeEachOthersWrites() throws {
        try TestEnv.ensureImage()
        let vol = "shared-\(UUID().uuidString.prefix(6).lowercased())"
        defer { _ = try? clab("volume", "rm", vol) }
        let reader = DataBox()
        let thread = Thread {
            let out = try? clab(
                "step", "10", "--quiet", "-v", "\(vol):/s", "--", "sh", "-c",
                "i=0; while [ ! -f /s/from-writer ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cat /s/from-writer; echo back > /s/from-reader"
            )
            reader.data = Data((out?.stdout ?? "").utf8)
        }
        thread.start()
        usleep(300_000)
        let writer = try clab(
            "step", "10", "--quiet", "-v", "\(vol):/s", "--", "sh", "-c",
            "echo hello > /s/from-writer; i=0; while [ ! -f /s/from-reader ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cat /s/from-reader"
        )
        #expect(writer.stdout == "back\n", "\(writer.stderr)")
        #expect(eventually(15) { reader.done })
        #expect(String(decoding: reader.data, as: UTF8.self) == "hello\n")
    }

    @Test func aVolumeInUseCannotBeRemoved() throws {
        let root = TestEnv.root + "/vol-in-use"
        try TestEnv.ensureImage(root: root)
        let done = DataBox()
        let thread = Thread {
            _ = try? runProcess([
                TestEnv.clab, "step", "10", "--root", root, "--quiet", "-v", "busy:/b", "--", "sleep", "2",
            ])
            done.data = Data()
        }
        thread.start()
        #expect(eventually(10) { !ContainerState.running(in: StateLayout.resolve(rootOption: root)).isEmpty })
        let refused = try clab("volume", "rm", "busy", env: ["CLAB_ROOT": root])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("volume 'busy' is in use by container"), "\(refused.stderr)")
        #expect(eventually(15) { done.done })
        #expect(try clab("volume", "rm", "busy", env: ["CLAB_ROOT": root]).status == 0)
    }

    @Test(arguments: [
        (["-v", "data"], "-v data: give SOURCE:TARGET[:ro]"),
        (["-v", "./d:/d"], "the bind source ./d is relative"),
        (["-v", "a/b:/d"], "the bind source a/b is relative"),
        (["-v", "data:rel"], "must be an absolute path inside the container"),
        (["-v", "/no/such/dir:/d"], "the bind source /no/such/dir does not exist"),
        (["-v", "b@d:/d"], "invalid volume name 'b@d'"),
        // A named volume is made last, once nothing else can fail: a later bad -v leaves none.
        (["-v", "data:/a", "-v", "/no/such/dir:/d"], "the bind source /no/such/dir does not exist"),
        (["-v", "data:/a", "-v", "b@d:/d"], "invalid volume name 'b@d'"),
    ])
    func badVolumesAreRefusedAndCreateNothing(args: [String], message: String) throws {
        let root = TestEnv.root + "/bad-vol-\(UUID().uuidString.prefix(6))"
        try TestEnv.ensureImage(root: root)
        let out = try runProcess([TestEnv.clab, "step", "10", "--root", root, "--quiet"] + args + ["--", "true"])
        #expect(out.status != 0)
        #expect(out.stderr.contains(message), "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root + "/volumes/data"))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) == [])
    }
}

/// Lines appended from several threads.
final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
