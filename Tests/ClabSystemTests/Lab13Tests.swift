import ClabChecks
import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// Lab 13: an OCI bundle edited by hand and run detached. The reference solution passes and
/// marks lesson 13 done; the known-bad attempt (memory in process.rlimits, CAP_NET_RAW taken
/// from "inheritable" only) fails with the lines that fix it; other mistakes (no container, an
/// image instead of a bundle, a writable bind of the bundle's own directory) each get their
/// line. Every test works in its own state root and removes its container (`clab rm -f`).
@Suite("lab 13 · an OCI bundle, edited by hand", needsRoot, .serialized)
struct Lab13Tests {
    static var root: String { TestEnv.root + "/lab13" }
    let dir = TestEnv.root + "/lab13-work-\(UUID().uuidString.prefix(8))"
    typealias P = Lab13Verifier.Property

    @discardableResult
    func script(_ name: String, _ args: String...) throws -> Output {
        try TestEnv.ensureImage(root: Self.root)
        let out = try labScript(13, name, args.first ?? dir, args.count > 1 ? args[1] : "", root: Self.root)
        return out
    }

    func run(_ args: String...) throws -> Output {
        try runProcess([TestEnv.clab] + args, env: ["CLAB_ROOT": Self.root])
    }

    func verify() throws -> [ProbeResult] {
        try LabVerifiers.verify(
            lab: 13, input: LabInput(),
            runtime: Runtime(layout: StateLayout.resolve(rootOption: Self.root), initPath: TestEnv.runtime.initPath))
    }

    /// Removes the container and the work directory, and proves the container's cgroups went too.
    func cleanup(cgroups: [String] = []) {
        _ = try? run("rm", "-f", "lab13")
        try? FileManager.default.removeItem(atPath: dir)
        let left = ContainerRecord.all(in: StateLayout.resolve(rootOption: Self.root)).filter { $0.name == "lab13" }
        #expect(left.isEmpty, "left behind: \(left.map(\.id))")
        for cgroup in cgroups { #expect(eventually { !FS.exists(cgroup) }, "cgroup left: \(cgroup)") }
    }

    func record() -> ContainerRecord? {
        ContainerRecord.all(in: StateLayout.resolve(rootOption: Self.root)).first { $0.name == "lab13" }
    }

    @Test func solutionPassesAndMarksLesson13Done() throws {
        try? FileManager.default.removeItem(atPath: Self.root + "/progress")
        var cgroups: [String] = []
        defer { cleanup(cgroups: cgroups) }
        let made = try script("solution.sh")
        #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
        let container = try #require(record())
        #expect(made.stdout.trimmed == container.id)
        cgroups = container.state.cgroups ?? []
        let out = try run("lab", "check", "13")
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 6 properties hold: lab 13 done"), "\(out.stdout)")
        #expect(out.stdout.contains("/data is \(dir)/data on the host"), "\(out.stdout)")
        #expect(out.stdout.contains(": \(Lab13Verifier.memoryBytes)"), "\(out.stdout)")
        // The pass marks lesson 13, which has no stage, in `clab lessons` and `clab progress`.
        let lessons = try run("lessons")
        #expect(lessons.stdout.contains("✓ 13 "), "\(lessons.stdout)")
        let json = try run("progress", "--json")
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let rows = report?["lessons"] as? [[String: Any]] ?? []
        #expect(rows.first { $0["stage"] as? Int == 13 }?["done"] as? Bool == true, "\(json.stdout)")
        #expect(rows.first { $0["stage"] as? Int == 13 }?["lab"] as? Int == 13)
        #expect(try run("progress").stdout.contains("✓ 13 lifecycle and the OCI spec"))
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        var cgroups: [String] = []
        defer { cleanup(cgroups: cgroups) }
        let made = try script("bad-attempt.sh")
        #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
        cgroups = record()?.state.cgroups ?? []
        let failed = failedProperties(try verify())
        #expect(Set(failed.keys) == [P.memory.id, P.capGone.id], "\(failed)")
        let memory = failed[P.memory.id] ?? ""
        #expect(memory.contains("memory.limit_in_bytes: 268435456") || memory.contains("memory.max: 268435456"))
        #expect(memory.contains("the limit went into process.rlimits (RLIMIT_AS 67108864"), "\(memory)")
        #expect(memory.contains("set linux.resources.memory.limit to 67108864"), "\(memory)")
        let cap = failed[P.capGone.id] ?? ""
        #expect(cap.contains("still in CapEff, CapPrm, CapBnd"), "\(cap)")
        #expect(cap.contains("you removed it from \"inheritable\" only"), "\(cap)")
        #expect(cap.contains("Remove \"CAP_NET_RAW\" from all four lists"), "\(cap)")
        let out = try run("lab", "check", "13")
        #expect(out.status == 1)
        #expect(out.stdout.contains("4 of 6 properties hold; to fix:"), "\(out.stdout)")
    }

    @Test func noContainerIsAFailureForEveryProperty() throws {
        cleanup()
        let results = try verify()
        #expect(results.count == 6)
        #expect(results.allSatisfy { !$0.passed })
        #expect(results.first?.fix?.contains("clab run -d --name lab13 --bundle DIR") == true)
        #expect(results.dropFirst().allSatisfy { $0.evidence.hasPrefix("not checked: no container lab13") })
    }

    @Test func aContainerFromAnImageIsNotTheBundle() throws {
        var cgroups: [String] = []
        defer { cleanup(cgroups: cgroups) }
        try TestEnv.ensureImage(root: Self.root)
        let started = try run("run", "-d", "--name", "lab13", "--", "sleep", "1000")
        #expect(started.status == 0, "\(started.stderr)")
        cgroups = record()?.state.cgroups ?? []
        let results = try verify()
        let first = try #require(results.first)
        #expect(!first.passed && first.evidence.contains("image busybox"), "\(first)")
        #expect(first.fix?.contains("this lab is about the bundle") == true)
        #expect(results.dropFirst().allSatisfy { !$0.passed && $0.evidence.contains("not started from a bundle") })
    }

    /// A writable bind of a directory inside the bundle: not the learner's host directory, and
    /// not read-only. Each is its own line.
    @Test func aWritableBindOfTheBundlesOwnDirectoryFailsTwice() throws {
        var cgroups: [String] = []
        defer { cleanup(cgroups: cgroups) }
        let made = try script("solution.sh")
        #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
        _ = try run("rm", "-f", "lab13")
        try edit(
            """
            m = [x for x in c["mounts"] if x["destination"] == "/data"][0]
            m["source"] = sys.argv[1] + "/rootfs/tmp"
            m["options"] = ["rbind"]
            """)
        let started = try run("run", "-d", "--name", "lab13", "--bundle", dir + "/bundle")
        #expect(started.status == 0, "\(started.stderr)")
        cgroups = record()?.state.cgroups ?? []
        let failed = failedProperties(try verify())
        #expect(Set(failed.keys) == [P.bind.id, P.readOnly.id], "\(failed)")
        #expect(failed[P.bind.id]?.contains("the source is inside \(dir)/bundle") == true, "\(failed)")
        #expect(failed[P.readOnly.id]?.contains("add \"ro\" to the mount's \"options\"") == true, "\(failed)")
    }

    /// A drop from `effective` only runs, as in runc (runtime-spec allows effective narrower
    /// than permitted), but root's execve recomputes its sets from bounding: the verifier sees
    /// the capability still held and names the fix.
    @Test func dropFromEffectiveOnlyIsCaughtByTheVerifier() throws {
        var cgroups: [String] = []
        defer { cleanup(cgroups: cgroups) }
        let made = try script("solution.sh")
        #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
        _ = try run("rm", "-f", "lab13")
        try edit(
            """
            caps = c["process"]["capabilities"]
            caps["bounding"] = caps["bounding"] + ["CAP_NET_RAW"]
            caps["permitted"] = caps["permitted"] + ["CAP_NET_RAW"]
            caps["inheritable"] = caps["inheritable"] + ["CAP_NET_RAW"]
            """)
        let started = try run("run", "-d", "--name", "lab13", "--bundle", dir + "/bundle")
        #expect(started.status == 0, "\(started.stderr)")
        cgroups = record()?.state.cgroups ?? []
        let failed = failedProperties(try verify())
        #expect(Set(failed.keys) == [P.capGone.id], "\(failed)")
        #expect(failed[P.capGone.id]?.contains("still in CapEff, CapPrm, CapBnd") == true, "\(failed)")
    }

    /// The verifier checks only clab's container; the solution's config.json is plain OCI, so
    /// runc runs it too, with the same mount and capability sets (its cgroups go beneath this
    /// process's own, and its state under the work directory; `runc run` deletes the container).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/runc")))
    func theSolutionsBundleRunsUnderRuncToo() throws {
        defer { cleanup() }
        let made = try script("solution.sh")
        #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
        _ = try run("rm", "-f", "lab13")
        try edit(
            """
            c["process"]["args"] = ["sh", "-c", "grep CapBnd /proc/self/status; grep ' /data ' /proc/self/mountinfo; cat /data/hello.txt"]
            """)
        let out = try runProcess([
            "/usr/sbin/runc", "--root", dir + "/runc", "run", "--bundle", dir + "/bundle", "lab13-runc-\(getpid())",
        ])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("CapBnd:\t00000000a80405fb"), "\(out.stdout)")
        #expect(out.stdout.contains(" /data ro,"), "\(out.stdout)")
        #expect(out.stdout.contains("hello from the host"), "\(out.stdout)")
    }

    /// Runs a python3 snippet on the bundle's config.json (`c`; sys.argv[1] is the bundle).
    func edit(_ code: String) throws {
        let program =
            "import json, sys\np = sys.argv[1] + '/config.json'\nc = json.load(open(p))\n" + code
            + "\njson.dump(c, open(p, 'w'), indent=4)\n"
        let out = try runProcess(["/usr/bin/python3", "-c", program, dir + "/bundle"])
        #expect(out.status == 0, "\(out.stderr)")
    }
}
