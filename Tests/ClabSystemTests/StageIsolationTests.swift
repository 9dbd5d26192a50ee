import ClabChecks
import ClabHost
import ClabRuntime
import ClabSpec
import Foundation
import Testing

/// Runs the probes of stages 1...n against a real stage-n container and returns them by id;
/// two results with one id fail the test (the later would hide the earlier).
func probe(_ n: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: ProbeResult] {
    try TestEnv.ensureImage()
    let results = try StageProbes(runtime: TestEnv.runtime).run(stage: try Stage.numbered(n))
    #expect(StageProbes.duplicateIDs(results).isEmpty, "ids used twice at stage \(n)", sourceLocation: sourceLocation)
    return Dictionary(results.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
}

/// Asserts that the property with this id exists and holds, showing its evidence on failure.
func expectHolds(_ results: [String: ProbeResult], _ id: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let r = results[id]
    #expect(r != nil, "no probe with id '\(id)' in \(results.keys.sorted())", sourceLocation: sourceLocation)
    if let r { #expect(r.passed, "\(id) (\(r.property)): \(r.evidence)", sourceLocation: sourceLocation) }
}

/// Which namespaces are the container's own, from /proc/<pid>/ns, must be exactly the stage's.
func expectNamespaces(_ results: [String: ProbeResult], stage n: Int, sourceLocation: SourceLocation = #_sourceLocation)
{
    let stage = Stage.all[n - 1]
    for ns in stage.namespaces { expectHolds(results, "ns.own.\(ns.rawValue)", sourceLocation: sourceLocation) }
    let shared = Namespace.allCases.filter { !stage.has($0) }
    if shared.isEmpty {
        #expect(results["ns.shared"] == nil, sourceLocation: sourceLocation)
    } else {
        expectHolds(results, "ns.shared", sourceLocation: sourceLocation)
        // The wording names the kinds still shared: learners read the list.
        #expect(
            results["ns.shared"]?.property
                == "not isolated yet (shared with the host): \(shared.map(\.rawValue).joined(separator: ", "))",
            sourceLocation: sourceLocation)
    }
    let failed = results.values.filter { !$0.passed }
    #expect(failed.isEmpty, "\(failed)", sourceLocation: sourceLocation)
}

/// `clab step N -- breakout`: exit 0 when it escapes, 1 when contained.
func breakoutStatus(_ n: Int) throws -> Output {
    try TestEnv.ensureImage()
    return try clab("step", "\(n)", "--quiet", "--", "breakout")
}

@Suite("stage 1 · chroot", needsRoot)
struct Stage1Tests {
    @Test func rootIsTheImageAndNothingElseIsIsolated() throws {
        let r = try probe(1)
        expectHolds(r, "chroot.image-root")
        expectHolds(r, "chroot.breakout-escapes")
        expectNamespaces(r, stage: 1)
    }

    @Test func breakoutEscapesToTheHostRoot() throws {
        let out = try breakoutStatus(1)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.hasPrefix("escaped:"))
        // What it lists is the host's real root directory.
        let hostRoot = try FileManager.default.contentsOfDirectory(atPath: "/").filter { !$0.hasPrefix(".") }
        let listed = out.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(hostRoot.sorted().prefix(3).allSatisfy { listed.contains(" \($0)") }, "\(listed)")
    }
}

@Suite("stage 2 · UTS namespace", needsRoot)
struct Stage2Tests {
    @Test func ownHostname() throws {
        let r = try probe(2)
        expectHolds(r, "uts.hostname-own")
        expectHolds(r, "uts.hostname-stays-inside")
        expectNamespaces(r, stage: 2)
    }

    @Test func hostnameOption() throws {
        try TestEnv.ensureImage()
        let out = try clab("step", "2", "--quiet", "--hostname", "web-1", "--", "hostname")
        #expect(out.status == 0)
        #expect(out.stdout == "web-1\n")
        #expect(Host.hostname != "web-1")
    }
}

@Suite("stage 3 · PID namespace", needsRoot)
struct Stage3Tests {
    @Test func commandIsPID1AndHostPidsAreInvisible() throws {
        let r = try probe(3)
        expectHolds(r, "pid.pid1")
        expectHolds(r, "pid.procs-own-only")
        expectHolds(r, "pid.host-unsignalled")
        expectHolds(r, "chroot.breakout-escapes")
        expectNamespaces(r, stage: 3)
    }

    @Test func psListsOnlyTheContainer() throws {
        try TestEnv.ensureImage()
        let out = try clab("step", "3", "--quiet", "--", "ps", "-o", "pid,comm")
        #expect(out.status == 0, "\(out.stderr)")
        let rows = out.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
        #expect(rows.count == 1 && rows.first == ["1", "ps"], "\(out.stdout)")
    }
}

@Suite("stage 4 · mount namespace + pivot_root", needsRoot)
struct Stage4Tests {
    @Test func mountsStayInsideAndOldRootIsGone() throws {
        let r = try probe(4)
        expectHolds(r, "mnt.mount-stays-inside")
        expectHolds(r, "mnt.propagation-private")
        expectHolds(r, "mnt.host-root-gone")
        expectHolds(r, "chroot.breakout-contained")
        expectNamespaces(r, stage: 4)
    }

    @Test(arguments: [4, 5, 6, 7])
    func breakoutIsContained(stage: Int) throws {
        let out = try breakoutStatus(stage)
        #expect(out.status == 1, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.hasPrefix("contained:"))
    }

    @Test(arguments: [1, 2, 3])
    func breakoutEscapesBeforeStage4(stage: Int) throws {
        let out = try breakoutStatus(stage)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
    }
}

@Suite("stage 5 · IPC namespace", needsRoot)
struct Stage5Tests {
    @Test func hostSharedMemoryIsInvisible() throws {
        let r = try probe(5)
        expectHolds(r, "ipc.host-shm-invisible")
        expectNamespaces(r, stage: 5)
    }
}

@Suite("stage 6 · network namespace", needsRoot)
struct Stage6Tests {
    @Test func onlyLoopbackUpAndNoRoutes() throws {
        let r = try probe(6)
        expectHolds(r, "net.devices-own-only")
        expectHolds(r, "net.lo-up")
        expectHolds(r, "net.no-route")
        expectNamespaces(r, stage: 6)
    }
}

@Suite("stage 7 · user namespace", needsRoot)
struct Stage7Tests {
    @Test func rootInsideIsAnUnprivilegedUidOutside() throws {
        let r = try probe(7)
        expectHolds(r, "user.root-mapped.uid_map")
        expectHolds(r, "user.root-mapped.gid_map")
        expectHolds(r, "user.root-inside")
        expectHolds(r, "user.file-owner-mapped")
        // The wording names the host uid a learner looks for.
        #expect(r["user.root-mapped.uid_map"]?.property == "uid_map maps container root to 100000")
        #expect(r["user.file-owner-mapped"]?.property == "a file created inside belongs to uid 100000 on the host")
        expectNamespaces(r, stage: 7)
    }

    @Test func containerRootCanWriteItsFiles() throws {
        try TestEnv.ensureImage()
        let out = try clab(
            "step", "7", "--quiet", "--", "sh", "-c",
            "echo hi > /root/.clab-write-test && cat /root/.clab-write-test && rm /root/.clab-write-test && stat -c %u /bin/busybox"
        )
        #expect(out.status == 0, "\(out.stderr)")
        // Container root owns its files: busybox shows as uid 0 inside (100000 on the host).
        #expect(out.stdout == "hi\n0\n")
    }
}
