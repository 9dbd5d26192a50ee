import ClabChecks
import ClabCore
import ClabKernel
import Foundation
import Testing

/// Runs the probes of stages 1...n against a real stage-n container and returns them by name.
func probe(_ n: Int) throws -> [String: ProbeResult] {
    try TestEnv.ensureImage()
    let results = try StageProbes(runtime: TestEnv.runtime).run(stage: try Stage.numbered(n))
    var byName: [String: ProbeResult] = [:]
    for r in results { byName[r.property] = r }
    return byName
}

/// Asserts that the property exists and holds, showing its evidence on failure.
func expectHolds(
    _ results: [String: ProbeResult], _ property: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    let r = results[property]
    #expect(r != nil, "no probe named '\(property)' in \(results.keys.sorted())", sourceLocation: sourceLocation)
    if let r { #expect(r.passed, "\(property): \(r.evidence)", sourceLocation: sourceLocation) }
}

/// Which namespaces are the container's own, from /proc/<pid>/ns, must be exactly the stage's.
func expectNamespaces(_ results: [String: ProbeResult], stage n: Int, sourceLocation: SourceLocation = #_sourceLocation)
{
    let stage = Stage.all[n - 1]
    for ns in stage.namespaces { expectHolds(results, "own \(ns.rawValue) namespace", sourceLocation: sourceLocation) }
    let shared = Namespace.allCases.filter { !stage.has($0) }
    if !shared.isEmpty {
        expectHolds(
            results, "not isolated yet (shared with the host): \(shared.map(\.rawValue).joined(separator: ", "))",
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
        expectHolds(r, "/ is the image")
        expectHolds(r, "chroot is not a jail: breakout escapes (stage 4 stops it)")
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
        expectHolds(r, "hostname is the container's")
        expectHolds(r, "a hostname set inside stays inside")
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
        expectHolds(r, "the command is PID 1")
        expectHolds(r, "only the container's processes are visible")
        expectHolds(r, "host processes cannot be signalled")
        expectHolds(r, "chroot is not a jail: breakout escapes (stage 4 stops it)")
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
        expectHolds(r, "a mount made inside stays inside")
        expectHolds(r, "mount propagation is private")
        expectHolds(r, "the host's root is not in the container's mount table")
        expectHolds(r, "breakout is contained")
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
        expectHolds(r, "host System V shared memory is invisible")
        expectNamespaces(r, stage: 5)
    }
}

@Suite("stage 6 · network namespace", needsRoot)
struct Stage6Tests {
    @Test func onlyLoopbackUpAndNoRoutes() throws {
        let r = try probe(6)
        expectHolds(r, "only lo exists")
        expectHolds(r, "lo is up")
        expectHolds(r, "no route anywhere")
        expectNamespaces(r, stage: 6)
    }
}

@Suite("stage 7 · user namespace", needsRoot)
struct Stage7Tests {
    @Test func rootInsideIsAnUnprivilegedUidOutside() throws {
        let r = try probe(7)
        expectHolds(r, "uid_map maps container root to 100000")
        expectHolds(r, "gid_map maps container root to 100000")
        expectHolds(r, "the command runs as root inside")
        expectHolds(r, "a file created inside belongs to uid 100000 on the host")
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
