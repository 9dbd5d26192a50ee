import ArgumentParser
import ClabLessons
import ClabSpec
import ClabSys
import Foundation
import Testing

@testable import ClabCLI
@testable import ClabCgroups
@testable import ClabHost
@testable import ClabImages
@testable import ClabRuntime

@Suite("stage catalogue and specs")
struct StageSpecTests {
    @Test func eachStageAddsExactlyItsNamespace() throws {
        let expected: [[Namespace]] = [
            [], [.uts], [.uts, .pid], [.uts, .pid, .mnt], [.uts, .pid, .mnt, .ipc],
            [.uts, .pid, .mnt, .ipc, .net], [.uts, .pid, .mnt, .ipc, .net, .user],
            [.uts, .pid, .mnt, .ipc, .net, .user], [.uts, .pid, .mnt, .ipc, .net, .user],
            [.uts, .pid, .mnt, .ipc, .net, .user],
        ]
        for (i, namespaces) in expected.enumerated() {
            let stage = try Stage.numbered(i + 1)
            #expect(stage.namespaces == namespaces)
            #expect(stage.cloneFlags == namespaces.reduce(0) { $0 | $1.cloneFlag })
        }
        #expect(Namespace.pid.cloneFlag == 0x2000_0000)
        #expect(Namespace.mnt.cloneFlag == 0x0002_0000)
        #expect(Namespace.user.cloneFlag == 0x1000_0000)
    }

    @Test(arguments: [0, Stage.all.count + 1, 99, -1])
    func stagesOutOfRangeAreRefused(n: Int) {
        #expect(throws: ClabError.self) { try Stage.numbered(n) }
    }

    @Test func stageArgumentParsing() throws {
        #expect(try parseStage("4").number == 4)
        let error = #expect(throws: ClabError.self) { try parseStage("x") }
        #expect(error?.message.contains("'x' is not a stage number") == true)
        #expect(error?.exitCode == 2)
    }

    @Test func stepOptionsParse() throws {
        let parsed = try Clab.parseAsRoot([
            "step", "3", "--hostname", "web", "--quiet", "--root", "/tmp/x", "--", "ps", "-ef",
        ])
        let step = try #require(parsed as? StepCommand)
        #expect(step.quiet)
        #expect(step.global.root == "/tmp/x")
        let request = try step.request()
        #expect(request.stage.number == 3)
        #expect(request.command == ["ps", "-ef"])
        #expect(request.hostname == "web")
        #expect(step.global.layout.root == "/tmp/x")
        #expect(step.global.layout.runDir == "/tmp/x/run")
    }

    @Test func defaultCommandIsTheShell() throws {
        let step = try #require(try Clab.parseAsRoot(["step", "2"]) as? StepCommand)
        #expect(try step.request().command == nil)
    }

    @Test func unknownOptionsAreRefused() {
        #expect(throws: (any Error).self) { try Clab.parseAsRoot(["step", "2", "--bogus"]) }
    }

    @Test func hostnamesAreValidated() {
        #expect(throws: ClabError.self) { try ContainerSpec.validateHostname("bad name") }
        #expect(throws: ClabError.self) { try ContainerSpec.validateHostname(String(repeating: "a", count: 65)) }
        #expect(throws: Never.self) { try ContainerSpec.validateHostname("web-1.local") }
    }

    @Test func bannerGivesTheUtilLinuxEquivalent() {
        let spec = ContainerSpec(
            id: "abc", stageNumber: 7, hostname: "abc", imageRoot: "/img", bundleDir: "/run/c/abc", command: ["sh"],
            env: [], idMapping: .defaultRange)
        let hand = Banner.byHand(spec)
        for part in [
            "--map-users=100000,0,65536", "--uts", "--ipc", "--net", "--mount", "--pid --fork", "pivot_root . .",
        ] {
            #expect(hand.contains(part), "\(part) missing from \(hand)")
        }
        #expect(
            Banner.text(for: PreparedContainer(spec: spec, cgroup: nil, cgroupLayout: nil, notes: [])).contains(
                "export ROOT=/img"))
        let one = ContainerSpec(
            id: "abc", stageNumber: 1, hostname: "abc", imageRoot: "/img", bundleDir: "/x", command: ["sh"], env: [],
            idMapping: nil)
        #expect(Banner.byHand(one) == "chroot $ROOT /bin/sh")
    }

    @Test func idMapLine() {
        #expect(IDMapping.defaultRange.mapLine == "0 100000 65536\n")
    }
}

@Suite("parsers and small pieces")
struct PieceTests {
    @Test func mountinfoParsing() {
        let text = """
            22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
            40 22 0:5 /x\\040y /mnt/a\\040b rw - tmpfs tmp rw
            """
        let mounts = Mounts.parse(text)
        #expect(mounts.count == 2)
        #expect(mounts[0].propagation == "shared:1")
        #expect(mounts[1].propagation == "private")
        #expect(mounts[1].mountPoint == "/mnt/a b")
        #expect(mounts[1].root == "/x y")
        #expect(mounts[1].fsType == "tmpfs")
    }

    @Test func initFailuresDecodeToOneLine() {
        #expect(
            InitReport.decode(InitReport.encode("stage 4: pivot_root: Invalid argument"), stage: 4)
                == "stage 4: pivot_root: Invalid argument")
        // From the C child: setresuid failed with EPERM.
        #expect(
            InitReport.decode(Array("EU1".utf8), stage: 7) == "stage 7: setresuid(0, 0, 0): Operation not permitted")
    }

    @Test func stateFileIsValidJSON() throws {
        let state = ContainerState(
            id: "abc", stage: 3, clabPid: 42, clabStartTime: 7, initPid: 43, created: 1,
            command: "sh -c 'echo \"hi\"\\n\tx'\u{1}")
        // Plain JSON: Foundation reads it too.
        let foundation = try JSONDecoder().decode(ContainerState.self, from: Data(try state.fileText().utf8))
        #expect(foundation.command == state.command)
        let decoded = try ContainerState.decoded(try state.fileText())
        #expect(decoded.command == state.command)
        #expect(decoded.initPid == 43)
        #expect(decoded.clabStartTime == 7)
        #expect(decoded.cgroup == nil)
    }

    /// The cgroup placement is kept as placed (its Codable, both ways): stats and gc use it
    /// instead of probing the directories again.
    @Test func stateFileKeepsTheCgroupPlacement() throws {
        func placement(note: String?, exclusive: Bool) -> CgroupPlacement {
            var p = CgroupPlacement(
                version: .v1,
                dirs: ["memory": "/sys/fs/cgroup/memory/a/clab/abc", "cpu": "/sys/fs/cgroup/cpu,cpuacct/a/clab/abc"],
                parents: ["/sys/fs/cgroup/memory/a/clab", "/sys/fs/cgroup/cpu,cpuacct/a/clab"], note: note)
            p.ownsParents = !exclusive
            p.exclusive = exclusive
            p.cgroupsPath = exclusive ? "pod/\"c\"" : nil
            return p
        }
        var state = ContainerState(id: "abc", stage: 8, clabPid: 42, created: 1)
        func roundTrip() throws -> CgroupPlacement? {
            try ContainerState.decoded(try state.fileText()).cgroup
        }
        // The note is said once, at placement, and not kept.
        state.cgroup = placement(note: "said once", exclusive: false)
        #expect(try roundTrip() == placement(note: nil, exclusive: false))
        state.cgroup = placement(note: nil, exclusive: true)
        #expect(try roundTrip() == state.cgroup)
        state.cgroup = CgroupPlacement(version: .v2, dirs: ["": "/sys/fs/cgroup/a/clab/abc"], parents: [], note: nil)
        #expect(try roundTrip() == state.cgroup)
    }

    @Test func specWireRoundTrip() throws {
        let spec = ContainerSpec(
            id: "abc", stageNumber: 7, hostname: "h", imageRoot: "/img", bundleDir: "/b",
            command: ["sh", "-c", "echo a=b", ""], env: ["A=1", "PS1=x = y"], idMapping: .defaultRange)
        #expect(try ContainerSpec(wire: spec.wire) == spec)
        #expect(throws: SpecWireError.self) { try ContainerSpec(wire: Array("id=x\0stage=99\0".utf8)) }
    }

    @Test func frontMatter() {
        let (meta, body) = Lesson.frontMatter("---\nstage: 3\ntitle: PID namespace\n---\n\n# Hello\n")
        #expect(meta["stage"] == "3")
        #expect(meta["title"] == "PID namespace")
        #expect(body == "# Hello\n")
    }

    @Test func markdownRendering() {
        let out = Markdown.render("# Title\nSome **bold** and `code`.\n- item\n```console\n$ clab step 1\n```")
        #expect(out.contains("\u{1B}[1m" + "bold"))
        #expect(out.contains("\u{1B}[36mcode"))
        #expect(out.contains("• item"))
        #expect(out.contains("    \u{1B}[1m$ clab step 1"))
        #expect(!out.contains("```"))
    }

    @Test func staticBinaryDetection() throws {
        #expect(try ELF.isStatic("/bin/busybox"))
        #expect(try !ELF.isStatic("/bin/ls"))
    }

    @Test func userNamespaceDetectionReadsProc() throws {
        let fake = "/tmp/clab-fakeproc-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: fake) }
        try FileManager.default.createDirectory(atPath: fake + "/sys/user", withIntermediateDirectories: true)
        #expect(Host.userNamespacesAvailable(proc: fake)?.contains("CONFIG_USER_NS") == true)
        try FileManager.default.createDirectory(atPath: fake + "/self/ns", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: fake + "/self/ns/user", contents: Data())
        _ = FileManager.default.createFile(atPath: fake + "/sys/user/max_user_namespaces", contents: Data("0\n".utf8))
        #expect(Host.userNamespacesAvailable(proc: fake)?.contains("max_user_namespaces = 0") == true)
        #expect(Host.userNamespacesAvailable() == nil)
    }
}

@Suite("subordinate id owners")
struct SubordinateIDTests {
    /// A user whose subordinate ids overlap clab's range can be the container's root on the host:
    /// clab names them (`useradd` gives the first user 100000-165535).
    @Test func overlappingRangesAreNamed() throws {
        let dir = NSTemporaryDirectory() + "subid-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "alice:100000:65536\nbob:165536:65536\n#bad\ncarol:99000:1001\n".write(
            toFile: dir + "/subuid", atomically: false, encoding: .utf8)
        try "dave:200000:10\n".write(toFile: dir + "/subgid", atomically: false, encoding: .utf8)
        let owners = Host.subordinateOwners(
            overlapping: IDMapping.defaultRange, files: [dir + "/subuid", dir + "/subgid"])
        #expect(owners == ["alice", "carol"])
        #expect(Host.subordinateOwners(overlapping: IDMapping.defaultRange, files: [dir + "/none"]).isEmpty)
    }
}

@Suite("UTC times")
struct UTCTimeTests {
    /// One formatter for records, events, lab records, runc's `created` and the Engine API.
    @Test func rfc3339() {
        #expect(UTCTime.rfc3339(seconds: 0) == "1970-01-01T00:00:00Z")
        #expect(UTCTime.milliseconds(1_735_787_045_078) == "2025-01-02T03:04:05.078Z")
        #expect(UTCTime.milliseconds(1_735_787_045_678) == "2025-01-02T03:04:05.678Z")
        #expect(UTCTime.rfc3339(seconds: 1_735_787_045, fraction: (5, 9)) == "2025-01-02T03:04:05.000000005Z")
        let now = UTCTime.nowNanoseconds()
        #expect(now.count == "2025-01-02T03:04:05.123456789Z".count && now.hasSuffix("Z"), "\(now)")
    }
}
