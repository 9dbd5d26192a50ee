import ClabChecks
import ClabHost
import ClabLessons
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// Runs a lab script as a learner would (clab on PATH, the test's state root).
@discardableResult
func labScript(_ lab: Int, _ name: String, _ args: String..., root: String = TestEnv.root) throws -> Output {
    let dir = try Lab.numbered(lab).directory
    return try runProcess(
        ["/bin/bash", dir + "/" + name] + args,
        env: ["PATH": "\(Path.dirname(TestEnv.clab)):/usr/sbin:/usr/bin:/sbin:/bin", "CLAB_ROOT": root])
}

func failedProperties(_ results: [ProbeResult]) -> [String: String] {
    Dictionary(results.filter { !$0.passed }.map { ($0.id, $0.explained) }, uniquingKeysWith: { a, _ in a })
}

/// Kills a process the test started (by pid) and waits until it is gone.
func killAndWait(_ pid: Int32) {
    guard pid > 0 else { return }
    kill(pid, SIGKILL)
    #expect(eventually { !Host.isAlive(pid: pid, startTime: nil) })
}

/// Hints one at a time, the solution behind a confirmation, the task without either, and a
/// lab's pass recorded (with its evidence) as what marks its lessons done.
@Suite("labs · hints, solutions, progress", needsRoot, .serialized)
struct LabCourseCLITests {
    static var root: String { TestEnv.root + "/course" }

    func run(_ args: String..., stdin: String = "") throws -> Output {
        try runProcess([TestEnv.clab] + args, env: ["CLAB_ROOT": Self.root], stdin: stdin)
    }

    @Test func hintsComeOneAtATimeAndAreRemembered() throws {
        try? FileManager.default.removeItem(atPath: Self.root + "/progress")
        let hints = try Lab.numbered(1).hints
        #expect(hints.count == 3)
        let show = try run("lab", "show", "1")
        #expect(show.status == 0)
        #expect(!show.stdout.contains("## Hint"), "\(show.stdout)")
        #expect(!show.stdout.contains("pivot_root . ."))  // hint 2 and 3's commands stay hidden
        #expect(show.stdout.contains("`clab lab hint 1` shows hint 1 of 3"))
        let first = try run("lab", "hint", "1")
        #expect(first.stdout.contains("Hint 1 of 3") && first.stdout.contains("--propagation private"))
        #expect(!first.stdout.contains("Hint 2"))
        let second = try run("lab", "hint", "1")
        #expect(second.stdout.contains("Hint 2 of 3") && second.stdout.contains("mount --bind"), "\(second.stdout)")
        let again = try run("lab", "hint", "1", "--all")
        #expect(again.stdout.contains("Hint 1 of 3") && again.stdout.contains("Hint 2 of 3"))
        #expect(!again.stdout.contains("Hint 3 of 3"))
        _ = try run("lab", "hint", "1")
        let done = try run("lab", "hint", "1")
        #expect(done.stdout.contains("You have seen all 3 hints"))
        #expect(LabProgress(layout: .resolve(rootOption: Self.root)).record(1).hintsShown == 3)
    }

    @Test func theSolutionNeedsAConfirmation() throws {
        let refused = try run("lab", "solution", "7")
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("run `clab lab solution 7 --yes`"))
        #expect(!refused.stdout.contains("setpriv"))
        let shown = try run("lab", "solution", "7", "--yes")
        #expect(shown.status == 0 && shown.stdout.contains("setpriv --reuid=300000"))
        #expect(LabProgress(layout: .resolve(rootOption: Self.root)).record(7).solutionShown)
    }

    @Test func progressComesFromALabsPassNotFromClabCheck() throws {
        let layout = StateLayout.resolve(rootOption: Self.root)
        try? FileManager.default.removeItem(atPath: Self.root + "/progress")
        let labs = try Lab.all()
        #expect(LabProgress(layout: layout).doneStages(labs).isEmpty)
        // A failed check is an attempt, not a pass.
        var record = try LabProgress(layout: layout).recordCheck(8, passed: false, lines: ["✗ x"], failed: ["x"])
        #expect(!record.passed && record.attempts == 1)
        record = try LabProgress(layout: layout).recordCheck(8, passed: true, lines: ["✓ y: z"], failed: [])
        #expect(record.passed && record.evidence == ["✓ y: z"] && record.attempts == 2)
        #expect(LabProgress(layout: layout).doneStages(labs) == [8])
        let lessons = try run("lessons")
        #expect(lessons.stdout.contains("✓ 8  "), "\(lessons.stdout)")
        #expect(!lessons.stdout.contains("✓ 4  "))
        let json = try run("progress", "--json")
        #expect(json.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let rows = report?["lessons"] as? [[String: Any]] ?? []
        #expect(rows.first { $0["stage"] as? Int == 8 }?["done"] as? Bool == true)
        #expect(rows.first { $0["stage"] as? Int == 1 }?["done"] as? Bool == false)
        let text = try run("progress")
        #expect(text.stdout.contains("1 of 14 lessons done"), "\(text.stdout)")
    }

    @Test func checkAllIsAClassReport() throws {
        try? FileManager.default.removeItem(atPath: Self.root + "/progress")
        // Lab 11 is checked now (nothing built: it fails); the others need an argument and
        // report their record.
        let out = try run("lab", "check", "--all", "--json")
        #expect(out.status == 0, "\(out.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        #expect(report?["root"] as? String == Self.root)
        let labs = report?["labs"] as? [[String: Any]] ?? []
        #expect(labs.map { $0["lab"] as? Int } == (try Lab.all()).map(\.number))
        let eleven = labs.first { $0["lab"] as? Int == 11 }
        #expect(eleven?["checked_now"] as? Bool == true && eleven?["passed"] as? Bool == false)
        #expect(labs.first { $0["lab"] as? Int == 7 }?["checked_now"] as? Bool == false)
        // The instructors' collector reads it.
        let file = Self.root + "/student-a.json"
        try FS.write(out.stdout, to: file)
        let collector = try Resources.shareDir() + "/instructors/collect.py"
        let table = try runProcess(["/usr/bin/python3", collector, file])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("student-a"), "\(table.stdout)")
        let csv = try runProcess(["/usr/bin/python3", collector, "--csv", file])
        #expect(csv.stdout.contains("student-a,"), "\(csv.stdout)")
        let both = try run("lab", "check", "--all", "--pid", "1")
        #expect(both.status != 0 && both.stderr.contains("--all checks each lab"))
    }

    @Test func cgroupParentIsRefusedWhenItClimbs() throws {
        for args in [
            ["check", "8"], ["tour"], ["image", "build", "-t", "x:1", "/nonexistent"], ["lab", "check", "12"],
        ] {
            let out = try runProcess(
                [TestEnv.clab] + args + ["--cgroup-parent", "../escape"], env: ["CLAB_ROOT": Self.root])
            #expect(out.status == 2, "\(args): \(out.stderr)")
            #expect(out.stderr.contains("must not contain '..'"), "\(args): \(out.stderr)")
        }
    }
}

/// Lab 7: user namespace maps by hand.
@Suite("lab 7 · user namespace maps by hand", needsRoot, .serialized)
struct Lab7Tests {
    func start(_ script: String) throws -> Int32 {
        let out = try labScript(7, script)
        let pid = Int32(out.stdout.trimmed)
        #expect(out.status == 0 && pid != nil, "\(script): \(out.stdout)\(out.stderr)")
        return pid ?? -1
    }

    @Test func solutionPasses() throws {
        let pid = try start("solution.sh")
        defer { killAndWait(pid) }
        let out = try clab("lab", "check", "7", "--pid", "\(pid)")
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 7 properties hold: lab 7 done"))
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        let pid = try start("bad-attempt.sh")
        defer { killAndWait(pid) }
        let failed = failedProperties(try LabVerifiers.verify(lab: 7, input: LabInput(pid: pid)))
        #expect(
            Set(failed.keys) == ["lab7.root-inside.uid", "lab7.root-inside.gid", "lab7.capabilities-in-ns"],
            "\(failed)")
        #expect(failed["lab7.root-inside.uid"]?.contains("still the host's root") == true)
    }

    @Test func aProcessThatIsGoneIsAnErrorNotAPass() throws {
        let out = try clab("lab", "check", "7", "--pid", "999999999")
        #expect(out.status != 0)
        #expect(out.stderr.contains("no process 999999999"))
    }
}

/// Lab 8: cgroups by hand, proven by the kernel's counters.
@Suite("lab 8 · cgroups by hand", needsRoot, .serialized)
struct Lab8Tests {
    func start(_ script: String) throws -> Int32 {
        let out = try labScript(8, script)
        let pid = Int32(out.stdout.trimmed)
        #expect(out.status == 0 && pid != nil, "\(script): \(out.stdout)\(out.stderr)")
        return pid ?? -1
    }

    func cleanup() {
        let out = try? labScript(8, "solution.sh", "cleanup")
        #expect(out?.status == 0, "\(out?.stderr ?? "")")
    }

    @Test func solutionPasses() throws {
        cleanup()
        defer { cleanup() }
        let pid = try start("solution.sh")
        defer { killAndWait(pid) }
        let out = try clab("lab", "check", "8", "--pid", "\(pid)")
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 7 properties hold: lab 8 done"))
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        cleanup()
        defer { cleanup() }
        let pid = try start("bad-attempt.sh")
        defer { killAndWait(pid) }
        let results = try LabVerifiers.verify(lab: 8, input: LabInput(pid: pid))
        let failed = failedProperties(results)
        #expect(failed["lab8.pids-limit"] != nil, "\(failed)")
        // The wording names the limit asked for.
        #expect(results.first { $0.id == "lab8.pids-limit" }?.property.hasPrefix("pids limit 20") == true)
        #expect(failed["lab8.memory-struck"] == nil, "\(failed)")
        #expect(failed["made-by-hand"] == nil)
    }

    /// The same checks on a cgroup v2 tree (a fake one: this host is v1): the files have v2's
    /// names and one directory holds both controllers.
    @Test func theVerifierReadsCgroupV2() throws {
        let fs = TestEnv.root + "/lab8-v2"
        defer { try? FileManager.default.removeItem(atPath: fs) }
        let dir = fs + "/user.slice/lab8"
        try FS.makeDirectories(dir)
        try FS.write("cpuset cpu io memory pids\n", to: fs + "/cgroup.controllers")
        try FS.write("33554432\n", to: dir + "/memory.max")
        try FS.write("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", to: dir + "/memory.events")
        try FS.write("20\n", to: dir + "/pids.max")
        try FS.write("max 4\n", to: dir + "/pids.events")
        let mounts = Mounts.parse("30 1 0:26 / \(fs) rw,nosuid shared:4 - cgroup2 cgroup2 rw\n")
        let made = ProbeResult(
            id: "made-by-hand", stage: 8, property: "made by hand, not by clab", passed: true, evidence: "test")
        var results = Lab8Verifier.verify(
            pid: 1, cgroupText: "0::/user.slice/lab8\n", mounts: mounts, madeByHand: made)
        #expect(results.allSatisfy { $0.passed }, "\(results)")
        // The wording names the file it read.
        #expect(results.first { $0.id == "lab8.memory-limit" }?.property == "memory limit 32 MiB (memory.max)")
        // A counter that cannot be read is a failure, never a pass.
        unlink(dir + "/pids.events")
        results = Lab8Verifier.verify(pid: 1, cgroupText: "0::/user.slice/lab8\n", mounts: mounts, madeByHand: made)
        #expect(
            results.first { $0.id == "lab8.pids-struck" }?.passed == false
        )
        // Not in lab8: each line says where it is, with the fix.
        results = Lab8Verifier.verify(pid: 1, cgroupText: "0::/user.slice\n", mounts: mounts, madeByHand: made)
        #expect(results.filter { !$0.passed }.count == 6)
    }
}

/// Lab 9: an overlay root by hand, and a commit.
@Suite("lab 9 · an overlay root by hand", needsRoot, .serialized)
struct Lab9Tests {
    /// Outside the state root: work inside clab's state is not "by hand".
    static var dir: String { "/tmp/clab-tests-lab9-\(getpid())" }

    func cleanup() {
        let out = try? labScript(9, "solution.sh", Self.dir, "cleanup")
        #expect(out?.status == 0)
        #expect(!(FS.read("/proc/self/mountinfo") ?? "").contains(Self.dir))
    }

    @Test func solutionPasses() throws {
        try TestEnv.ensureImage()
        cleanup()
        defer { cleanup() }
        try labScript(9, "solution.sh", Self.dir)
        let out = try clab("lab", "check", "9", "--dir", Self.dir)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 9 properties hold: lab 9 done"))
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        try TestEnv.ensureImage()
        cleanup()
        defer { cleanup() }
        try labScript(9, "bad-attempt.sh", Self.dir)
        let failed = failedProperties(
            try LabVerifiers.verify(lab: 9, input: LabInput(dir: Self.dir), runtime: TestEnv.runtime))
        #expect(Set(failed.keys) == ["lab9.commit"], "\(failed)")
        #expect(failed.values.first?.contains("a commit is the writable layer, not the merged view") == true)
    }

    @Test func nothingBuiltFailsEveryProperty() throws {
        cleanup()
        let results = try LabVerifiers.verify(lab: 9, input: LabInput(dir: Self.dir), runtime: TestEnv.runtime)
        #expect(results.filter { !$0.passed }.count == 8, "\(results)")  // only "made by hand" holds
    }
}

/// "By hand" means by hand: a container clab made, which has every namespace, map and cgroup
/// lab 1, 3, 7 and 8 ask for, fails each of them on "made by hand, not by clab"; and a kept
/// container's writable layer is not lab 9's work.
@Suite("labs · clab's own containers are not the learner's work", needsRoot, .serialized)
struct LabByHandTests {
    static var root: String { TestEnv.root + "/byhand" }

    @Test func aClabContainerFailsTheByHandLabs() throws {
        try TestEnv.ensureImage(root: Self.root)
        let layout = StateLayout.resolve(rootOption: Self.root)
        var clabPid: pid_t = 0
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in 0...2 { posix_spawn_file_actions_adddup2(&actions, null, fd) }
        var environment = ProcessInfo.processInfo.environment
        environment["CLAB_ROOT"] = Self.root
        #expect(
            spawnWithDefaultSignals(
                &clabPid, [TestEnv.clab, "step", "8", "--quiet", "--", "sleep", "60"], environment: environment,
                actions: &actions) == 0)
        defer {
            kill(clabPid, SIGTERM)
            var status: Int32 = 0
            waitpid(clabPid, &status, 0)
        }
        var initPid: Int32?
        #expect(
            eventually(10) {
                initPid = ContainerState.running(in: layout).first?.initPid
                return initPid.map { FS.read("/proc/\($0)/comm")?.trimmed == "sleep" } ?? false
            })
        guard let pid = initPid else { return }
        let runtime = Runtime(layout: layout, initPath: TestEnv.runtime.initPath)
        for lab in [1, 3, 5, 7, 8] {
            let results = try LabVerifiers.verify(lab: lab, input: LabInput(pid: pid), runtime: runtime)
            let made = results.first { $0.id == "made-by-hand" }
            #expect(made?.passed == false, "lab \(lab): \(results)")
            #expect(made?.fix?.contains("not `clab step`") == true)
        }
        // Lab 3 makes no orphan in clab's container: a zombie would stay there until it ends.
        let lab3 = try LabVerifiers.verify(lab: 3, input: LabInput(pid: pid), runtime: runtime)
        #expect(lab3.first { $0.id == "lab3.reaps-orphans" }?.evidence.contains("makes no orphan") == true)
        // A clab container's network namespace, named lab6-a (`ip netns attach lab6-a PID`), is
        // not lab 6's work. Judged on the inode the name would resolve to: the lab 6 suite owns
        // the real names, and suites run in parallel.
        let netns = try #require(Host.namespaceID(pid: "\(pid)", .net).flatMap { UInt($0.filter(\.isNumber)) })
        let lab6 = Lab6Verifier.byHand(["lab6-a": netns], layouts: [layout])
        #expect(
            !lab6.passed && lab6.evidence.contains("lab6-a is the network namespace of clab's container"), "\(lab6)")
        let lab15 = Lab6Verifier.byHand(
            ["lab15-h": netns], layouts: [layout], stage: 15, names: Lab15Verifier.namespaces)
        #expect(
            !lab15.passed && lab15.evidence.contains("lab15-h is the network namespace of clab's container"), "\(lab15)"
        )
        let lab10 = try LabVerifiers.verify(
            lab: 10, input: LabInput(dir: "/tmp/clab-tests-byhand-\(getpid())", pids: [pid, pid]), runtime: runtime)
        #expect(lab10.first?.id == "made-by-hand" && lab10.first?.passed == false, "\(lab10)")
        // Lab 1's other properties hold for clab's stage-8 container: only the origin fails it.
        let lab1 = try LabVerifiers.verify(lab: 1, input: LabInput(pid: pid), runtime: runtime)
        #expect(lab1.filter { !$0.passed }.map(\.id) == ["made-by-hand"], "\(lab1)")
    }

    @Test func aKeptClabContainerIsNotLab9sWork() throws {
        try TestEnv.ensureImage(root: Self.root)
        let out = try clab(
            "step", "9", "--quiet", "--name", "lab9clab", "--keep", "--", "rm", "/etc/hosts",
            env: ["CLAB_ROOT": Self.root])
        #expect(out.status == 0, "\(out.stderr)")
        defer { _ = try? clab("rm", "lab9clab", env: ["CLAB_ROOT": Self.root]) }
        let layout = StateLayout.resolve(rootOption: Self.root)
        let results = try LabVerifiers.verify(
            lab: 9, input: LabInput(dir: KeptContainers(layout: layout).path("lab9clab")),
            runtime: Runtime(layout: layout, initPath: TestEnv.runtime.initPath))
        #expect(results.first?.passed == false && results.first?.id == "made-by-hand", "\(results)")
    }
}
