import ClabChecks
import ClabHost
import ClabLessons
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// Lab 1: the reference solution passes the verifier; the known-bad attempt fails it with the
/// lines a learner needs.
@Suite("lab 1 · a container by hand", needsRoot, .serialized)
struct Lab1Tests {
    /// Runs a lab script (it leaves the container running and prints its PID 1's host pid).
    func startScript(_ name: String) throws -> Int32 {
        try TestEnv.ensureImage()
        let lab = try Lab.numbered(1)
        let out = try runProcess(
            ["/bin/bash", lab.directory + "/" + name],
            env: ["PATH": "\(Path.dirname(TestEnv.clab)):/usr/sbin:/usr/bin:/sbin:/bin"])
        let pid = Int32(out.stdout.trimmed)
        #expect(out.status == 0 && pid != nil, "\(name): \(out.stdout)\(out.stderr)")
        return pid ?? -1
    }

    func stop(_ pid: Int32) {
        guard pid > 0 else { return }
        kill(pid, SIGKILL)
        #expect(eventually { !Host.isAlive(pid: pid, startTime: nil) })
    }

    @Test func solutionPasses() throws {
        let pid = try startScript("solution.sh")
        defer { stop(pid) }
        let out = try clab("lab", "check", "1", "--pid", "\(pid)")
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 10 properties hold"))
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        let pid = try startScript("bad-attempt.sh")
        defer { stop(pid) }
        let results = try LabVerifiers.verify(lab: 1, pid: pid)
        let failed = results.filter { !$0.passed }
        #expect(
            Set(failed.map(\.id)) == ["lab1.host-root-gone", "lab1.breakout-contained"])
        #expect(failed.contains { $0.fix?.contains("use pivot_root . . and umount -l .") == true })
        let out = try clab("lab", "check", "1", "--pid", "\(pid)")
        #expect(out.status == 1)
        #expect(out.stdout.contains("✗ breakout is contained"))
    }

    @Test func hostShellFailsEverything() throws {
        // Not a container at all: the verifier's own parent.
        let results = try LabVerifiers.verify(lab: 1, pid: getpid())
        for id in ["lab1.image-root", "lab1.ns-own.uts", "lab1.ns-own.pid", "lab1.ns-own.mnt"] {
            #expect(results.first { $0.id == id }?.passed == false, "\(id)")
        }
    }

    @Test func listAndShow() throws {
        let list = try clab("lab", "list")
        #expect(list.stdout.contains("1   A container by hand") && list.stdout.contains("lessons 1-4"))
        let show = try clab("lab", "show", "1")
        #expect(show.stdout.contains("pivot_root"))
        #expect(!show.stdout.hasPrefix("---"))
        let missing = try clab("lab", "check", "1", "--pid", "999999999")
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no process 999999999"))
    }
}

/// Lab 11: VXLAN between two simulated hosts. The reference solution passes, the known-bad
/// attempt (VNI 43 on one side) and a container MTU too big for the tunnel fail with the line
/// that fixes them. Everything lives in the lab's own lab11-* network namespaces, which every
/// test deletes at its start and its end (`solution.sh cleanup`), pass or fail.
@Suite("lab 11 · overlay networks by hand", needsRoot, .serialized)
struct Lab11Tests {
    @discardableResult
    func script(_ name: String, _ args: String...) throws -> Output {
        let lab = try Lab.numbered(11)
        let out = try runProcess(
            ["/bin/bash", lab.directory + "/" + name] + args, env: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        #expect(out.status == 0, "\(name) \(args.joined(separator: " ")): \(out.stdout)\(out.stderr)")
        return out
    }

    /// No lab11-* namespace is left, whatever the test did.
    func cleanup() {
        _ = try? script("solution.sh", "cleanup")
        let left = (try? runProcess(["/usr/sbin/ip", "netns", "list"]))?.stdout ?? ""
        #expect(!left.contains("lab11-"), "left behind: \(left)")
    }

    func failed(_ results: [ProbeResult]) -> [String: String] {
        Dictionary(results.filter { !$0.passed }.map { ($0.id, $0.explained) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func solutionPasses() throws {
        cleanup()
        defer { cleanup() }
        try script("solution.sh")
        // Idempotent: a second run starts from scratch.
        try script("solution.sh")
        let out = try clab("lab", "check", "11")
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 15 properties hold: lab 11 done"), "\(out.stdout)")
        #expect(out.stdout.hasPrefix("clab lab check 11: Overlay networks by hand, namespaces lab11-host1"))
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        cleanup()
        defer { cleanup() }
        try script("bad-attempt.sh")
        let failed = failed(try LabVerifiers.verify(lab: 11, pid: nil))
        #expect(
            Set(failed.keys) == ["lab11.vxlan.lab11-host2", "lab11.tunnel-ping", "lab11.tunnel-full-size"], "\(failed)")
        let vni = failed["lab11.vxlan.lab11-host2"] ?? ""
        #expect(vni.contains("VNI 43 — both ends must use VNI 42"), "\(vni)")
        #expect(vni.contains("ip -n lab11-host2 link add vxlan42 type vxlan id 42 dstport 4789"), "\(vni)")
        #expect(failed["lab11.tunnel-ping"]?.contains("100% packet loss") == true)
        let out = try clab("lab", "check", "11")
        #expect(out.status == 1)
        #expect(out.stdout.contains("✗ lab11-host2: vxlan VNI 42"))
        #expect(out.stdout.contains("12 of 15 properties hold; to fix:"))
    }

    @Test func aContainerMTUAboveTheTunnelsLosesBigPackets() throws {
        cleanup()
        defer { cleanup() }
        try script("solution.sh")
        try runProcess(["/usr/sbin/ip", "-n", "lab11-c1", "link", "set", "eth0", "mtu", "1500"])
        let failed = failed(try LabVerifiers.verify(lab: 11, pid: nil))
        #expect(Set(failed.keys) == ["lab11.tunnel-full-size"], "\(failed)")
        #expect(failed.values.first?.contains("ip -n lab11-c1 link set eth0 mtu 1450") == true)
    }

    @Test func wiringMistakesNameTheCommandThatFixesThem() throws {
        cleanup()
        defer { cleanup() }
        try script("solution.sh")
        // The vxlan device off the bridge, the port Linux picks without dstport, c2's address
        // missing: each is its own ✗ line with its own command.
        for argv in [
            ["-n", "lab11-host1", "link", "set", "vxlan42", "nomaster"],
            ["-n", "lab11-host2", "link", "del", "vxlan42"],
            [
                "-n", "lab11-host2", "link", "add", "vxlan42", "type", "vxlan", "id", "42", "dstport", "8472", "remote",
                "203.0.113.1",
            ],
            ["-n", "lab11-c2", "addr", "flush", "dev", "eth0"],
        ] {
            let out = try runProcess(["/usr/sbin/ip"] + argv)
            #expect(out.status == 0, "ip \(argv): \(out.stderr)")
        }
        let failed = failed(try LabVerifiers.verify(lab: 11, pid: nil))
        #expect(
            failed["lab11.bridge.lab11-host1"]?.contains(
                "ip -n lab11-host1 link set vxlan42 master br0") == true, "\(failed)")
        #expect(
            failed["lab11.vxlan.lab11-host2"]?.contains(
                "UDP port 8472 (8472 is Linux's default") == true, "\(failed)")
        #expect(
            failed["lab11.eth0-address.lab11-c2"]?.contains("ip -n lab11-c2 addr add 10.42.0.2/24 dev eth0")
                == true, "\(failed)")
        #expect(failed["lab11.tunnel-ping"] != nil)
    }

    @Test func nothingBuiltFailsEveryPropertyWithItsReason() throws {
        cleanup()
        let results = try LabVerifiers.verify(lab: 11, pid: nil)
        #expect(results.count == 15)
        #expect(results.allSatisfy { !$0.passed })
        #expect(results.first?.fix?.contains("create it: ip netns add lab11-host1") == true)
        #expect(results.last?.evidence.contains("not tried") == true)
    }

    @Test func aNamespaceMustBeItsOwn() throws {
        cleanup()
        defer {
            umount2("/run/netns/lab11-c2", Int32(MNT_DETACH))
            cleanup()
        }
        // lab11-c2 as a second name for lab11-c1 (what `ip netns attach` does), and a plain file
        // where a namespace should be: neither counts, and nothing is pinged from them.
        try script("solution.sh")
        try runProcess(["/usr/sbin/ip", "netns", "delete", "lab11-c2"])
        #expect(close(open("/run/netns/lab11-c2", O_CREAT | O_WRONLY, 0o644)) == 0)
        #expect(mount("/run/netns/lab11-c1", "/run/netns/lab11-c2", nil, UInt(MS_BIND), nil) == 0)
        var results = try LabVerifiers.verify(lab: 11, pid: nil)
        #expect(
            results.first { $0.id == "lab11.netns-own.lab11-c2" }?.evidence.contains(
                "is the same namespace as lab11-c1") == true)
        #expect(
            results.first { $0.id == "lab11.eth0-address.lab11-c2" }?.evidence.contains(
                "not checked: lab11-c2 is lab11-c1") == true)
        umount2("/run/netns/lab11-c2", Int32(MNT_DETACH))
        results = try LabVerifiers.verify(lab: 11, pid: nil)
        #expect(
            results.first { $0.id == "lab11.netns-own.lab11-c2" }?.evidence.contains(
                "holds no namespace") == true)
        #expect(
            results.first { $0.id == "lab11.netns-own.lab11-c2" }?.fix?.contains(
                "ip netns delete lab11-c2; ip netns add lab11-c2") == true)
    }

    @Test func pidIsForLabsThatInspectAProcess() throws {
        let noPid = try clab("lab", "check", "1")
        #expect(noPid.status == 2)
        #expect(noPid.stderr.contains("lab 1 inspects the process you started: give its host pid with --pid PID"))
        let extra = try clab("lab", "check", "11", "--pid", "1")
        #expect(extra.status == 2)
        #expect(extra.stderr.contains("lab 11 finds what it checks by itself and takes no --pid"))
        #expect(try clab("lab", "list").stdout.contains("11  Overlay networks by hand"))
    }
}

/// Lab 12: a seccomp profile that refuses every mode change. The reference solution passes, the
/// known-bad attempt (chmod only) fails naming the syscalls left open, a broken file gets its
/// one-line error, and a profile that refuses everything is stopped, not waited on forever.
@Suite("lab 12 · a seccomp profile of your own", needsRoot, .serialized)
struct Lab12Tests {
    func profile(_ script: String) throws -> String {
        let lab = try Lab.numbered(12)
        let file = TestEnv.root + "/lab12-\(UUID().uuidString.prefix(8)).json"
        let out = try runProcess(["/bin/bash", lab.directory + "/" + script, file])
        #expect(out.status == 0 && out.stdout.trimmed == file, "\(script): \(out.stdout)\(out.stderr)")
        return file
    }

    func write(_ text: String) throws -> String {
        let file = TestEnv.root + "/lab12-\(UUID().uuidString.prefix(8)).json"
        try FS.write(text, to: file)
        return file
    }

    func failed(_ results: [ProbeResult]) -> [String: String] {
        Dictionary(results.filter { !$0.passed }.map { ($0.id, $0.explained) }, uniquingKeysWith: { a, _ in a })
    }

    func verify(_ file: String) throws -> [ProbeResult] {
        try TestEnv.ensureImage(root: Self.root)
        return try LabVerifiers.verify(
            lab: 12, pid: nil, profile: file,
            runtime: Runtime(layout: StateLayout.resolve(rootOption: Self.root), initPath: TestEnv.runtime.initPath))
    }

    /// A state root of its own: "nothing left" must not see other suites' containers.
    static var root: String { TestEnv.root + "/lab12" }

    /// Nothing of the probes' containers is left.
    func expectNothingLeft() {
        let left = (try? FileManager.default.contentsOfDirectory(atPath: Self.root + "/run/containers")) ?? []
        #expect(left.isEmpty, "left behind: \(left)")
    }

    @Test func solutionPasses() throws {
        let file = try profile("solution.sh")
        try TestEnv.ensureImage(root: Self.root)
        let out = try clab("lab", "check", "12", "--profile", file, env: ["CLAB_ROOT": Self.root])
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 6 properties hold: lab 12 done"), "\(out.stdout)")
        #expect(out.stdout.contains("chmod-probe: fchmodat2: EPERM (Operation not permitted)"))
        expectNothingLeft()
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        let failed = failed(try verify(try profile("bad-attempt.sh")))
        #expect(
            Set(failed.keys) == ["lab12.refused.fchmod", "lab12.refused.fchmodat", "lab12.refused.fchmodat2"],
            "\(failed)")
        #expect(
            failed["lab12.refused.fchmodat"]?.contains(
                "chmod-probe: fchmodat: ok — coreutils' chmod, and glibc's chmod() on most machines, call fchmodat(2): add \"fchmodat\" to your rule's names"
            ) == true, "\(failed)")
        #expect(failed["lab12.refused.fchmod"]?.contains("add \"fchmod\"") == true)
        expectNothingLeft()
    }

    @Test func invalidJSONIsOneLineAndNothingRuns() throws {
        let file = try write("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [\n")
        let results = try verify(file)
        #expect(results.count == 6 && results.allSatisfy { !$0.passed })
        let line = results.first?.evidence ?? ""
        #expect(line.contains("seccomp profile \(file): not valid JSON at line 2, column 1"), "\(line)")
        #expect(!line.contains("\n"))
        #expect(results.dropFirst().allSatisfy { $0.evidence.hasPrefix("not tried: the profile is not valid") })
        let unknown = try write(
            "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"chmood\"], \"action\": \"SCMP_ACT_ERRNO\"}]}"
        )
        #expect(try verify(unknown).first?.evidence.contains("syscall 'chmood'") == true)
    }

    @Test func wrongActionsNameTheirFix() throws {
        let kill = try write(
            "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"chmod\", \"fchmod\", \"fchmodat\", \"fchmodat2\"], \"action\": \"SCMP_ACT_KILL\"}]}"
        )
        let killed = failed(try verify(kill))
        #expect(killed.count == 4, "\(killed)")
        #expect(killed["lab12.refused.chmod"]?.contains("killed by signal 31") == true, "\(killed)")
        #expect(killed["lab12.refused.chmod"]?.contains("use \"action\": \"SCMP_ACT_ERRNO\"") == true)
        let eacces = try write(
            "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"chmod\", \"fchmod\", \"fchmodat\", \"fchmodat2\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13}]}"
        )
        let wrong = failed(try verify(eacces))
        #expect(wrong["lab12.refused.fchmod"]?.contains("EACCES") == true, "\(wrong)")
        #expect(wrong["lab12.refused.fchmod"]?.contains("\"errnoRet\": 1") == true)
        expectNothingLeft()
    }

    @Test func aProfileThatRefusesEverythingIsRefusedFirst() throws {
        // init could not even exit under it (exit_group refused): clab refuses the profile itself.
        let file = try write("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": []}")
        let failed = failed(try verify(file))
        #expect(
            failed["lab12.profile-valid"]?.contains("it refuses execve, which clab-init calls")
                == true,
            "\(failed)")
        #expect(failed["lab12.refused.chmod"]?.contains("not tried") == true)
        expectNothingLeft()
    }

    @Test func profileIsRequiredAndOnlyForLab12() throws {
        let missing = try clab("lab", "check", "12")
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("give it with --profile FILE"))
        let extra = try clab("lab", "check", "11", "--profile", "x.json")
        #expect(extra.status == 2)
        #expect(extra.stderr.contains("lab 11 takes no --profile"))
        #expect(try clab("lab", "list").stdout.contains("12  A seccomp profile of your own"))
    }
}
