import Foundation
import Glibc
import Testing

@testable import ClabHost
@testable import ClabImages
@testable import ClabRuntime
@testable import ClabSpec
@testable import ClabSys

/// A whiteout is a 0/0 character device in the upper layer; making one (mknod) needs root.
@Suite("layers: whiteouts", needsRoot)
struct LayerWhiteoutTests {
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
