import CLibBPF
import ClabSpec
import Foundation
import Testing

@testable import ClabTrace

/// Stage 12 in the tracer, from synthetic events: capset, prctl, prlimit64 and seccomp as strace
/// shows them, and clab-init's hardening calls labelled stage 12.
@Suite("trace · stage 12 decoding and labels")
struct TraceHardeningDecodingTests {
    static func nr(_ name: String) -> Int32 { Int32(SyscallCatalog.number(name) ?? -1) }

    static func le<T: FixedWidthInteger>(_ values: T...) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    }

    /// Docker's default 14, as clab-init passes them to capset.
    static let docker: UInt32 = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31].reduce(0) { $0 | 1 << $1 }
    static let dockerNames =
        "1<<CAP_CHOWN|1<<CAP_DAC_OVERRIDE|1<<CAP_FOWNER|1<<CAP_FSETID|1<<CAP_KILL|1<<CAP_SETGID|1<<CAP_SETUID|1<<CAP_SETPCAP|1<<CAP_NET_BIND_SERVICE|1<<CAP_NET_RAW|1<<CAP_SYS_CHROOT|1<<CAP_MKNOD|1<<CAP_AUDIT_WRITE|1<<CAP_SETFCAP"

    @Test func capsetShowsTheHeaderAndTheSetsByName() {
        let header = Self.le(UInt32(0x2008_0522), UInt32(0))
        // Two structs: the low 32 bits of each set, then the high ones (CAP_BPF is bit 39).
        let data = Self.le(Self.docker, Self.docker, UInt32(0), UInt32(0), UInt32(1 << 7), UInt32(0))
        let call = Syscall(nr: Self.nr("capset"), args: [0x1000, 0x2000], strings: [header, data])
        #expect(
            Decoder.line(call)
                == "capset({version=_LINUX_CAPABILITY_VERSION_3, pid=0}, {effective=\(Self.dockerNames), permitted=\(Self.dockerNames)|1<<CAP_BPF, inheritable=0}) = 0"
        )
        // Version 1 has one struct: what follows it is not a high half.
        let v1 = Syscall(
            nr: Self.nr("capset"), args: [0x1000, 0x2000],
            strings: [
                Self.le(UInt32(0x1998_0330), UInt32(42)), Self.le(UInt32(1), UInt32(1), UInt32(0), UInt32(9), 9, 9),
            ])
        #expect(
            Decoder.args(v1)
                == [
                    "{version=_LINUX_CAPABILITY_VERSION_1, pid=42}",
                    "{effective=1<<CAP_CHOWN, permitted=1<<CAP_CHOWN, inheritable=0}",
                ])
        // capget fills its data: a failed one shows the pointer; nothing read shows the pointer too.
        let failed = Syscall(
            nr: Self.nr("capget"), ret: -22, args: [0x1000, 0x2000], strings: [header, Array(repeating: 0, count: 24)])
        #expect(Decoder.args(failed)[1] == "0x2000")
        let unread = Syscall(nr: Self.nr("capset"), ret: -14, args: [0x1000, 0])
        #expect(Decoder.line(unread) == "capset(0x1000, NULL) = -1 EFAULT (Bad address)")
    }

    @Test func prctlNamesStage12Options() {
        func line(_ args: UInt64...) -> String { Decoder.line(Syscall(nr: Self.nr("prctl"), args: args)) }
        #expect(line(24, 21, 0, 0, 0) == "prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN) = 0")
        #expect(line(23, 0x29, 0, 0, 0) == "prctl(PR_CAPBSET_READ, 0x29 /* CAP_??? */) = 0")
        #expect(line(47, 4, 0, 0, 0) == "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) = 0")
        #expect(line(47, 1, 12, 0, 0) == "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_ADMIN, 0, 0) = 0")
        #expect(line(38, 1, 0, 0, 0) == "prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) = 0")
        #expect(line(22, 2, 0x3000, 0, 0) == "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, 0x3000, NULL, NULL) = 0")
        // The others as before.
        #expect(line(1, 9, 0, 0, 0) == "prctl(PR_SET_PDEATHSIG, SIGKILL, NULL, NULL, NULL) = 0")
        #expect(line(15, 0x7000, 0, 0, 0) == "prctl(PR_SET_NAME, 0x7000) = 0")
    }

    @Test func seccompShowsTheFilterLength() {
        let fprog = Self.le(UInt16(123), UInt16(0), UInt16(0), UInt16(0)) + Self.le(UInt64(0x7ffd_1234_5678))
        let install = Syscall(nr: Self.nr("seccomp"), args: [1, 0, 0x1000], strings: [fprog])
        #expect(Decoder.line(install) == "seccomp(SECCOMP_SET_MODE_FILTER, 0, {len=123, filter=0x7ffd12345678}) = 0")
        let flagged = Syscall(nr: Self.nr("seccomp"), ret: -13, args: [1, 1 | 2, 0x1000], strings: [fprog])
        #expect(
            Decoder.line(flagged)
                == "seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC|SECCOMP_FILTER_FLAG_LOG, {len=123, filter=0x7ffd12345678}) = -1 EACCES (Permission denied)"
        )
        // Other operations take other arguments: the pointer; unreadable: the pointer.
        let avail = Syscall(nr: Self.nr("seccomp"), args: [2, 0, 0x1000], strings: [fprog])
        #expect(Decoder.line(avail) == "seccomp(SECCOMP_GET_ACTION_AVAIL, 0, 0x1000) = 0")
        let unread = Syscall(nr: Self.nr("seccomp"), ret: -14, args: [1, 0, 0x1000])
        #expect(Decoder.args(unread)[2] == "0x1000")
    }

    @Test func limitsLikeStrace() {
        let new = Self.le(UInt64(1024), UInt64(524_288))
        let set = Syscall(nr: Self.nr("prlimit64"), args: [0, 7, 0x1000, 0], strings: [new, nil])
        #expect(Decoder.line(set) == "prlimit64(0, RLIMIT_NOFILE, {rlim_cur=1024, rlim_max=512*1024}, NULL) = 0")
        let old = Self.le(UInt64(8 << 20), UInt64.max)
        let get = Syscall(nr: Self.nr("prlimit64"), args: [0, 3, 0, 0x2000], strings: [nil, old])
        #expect(
            Decoder.line(get)
                == "prlimit64(0, RLIMIT_STACK, NULL, {rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}) = 0")
        let setrlimit = Syscall(nr: Self.nr("setrlimit"), args: [7, 0x1000], strings: [Self.le(UInt64(1000), 1000)])
        #expect(Decoder.line(setrlimit) == "setrlimit(RLIMIT_NOFILE, {rlim_cur=1000, rlim_max=1000}) = 0")
    }

    @Test func stage12NamespacesByName() {
        #expect(Decoder.line(Syscall(nr: Self.nr("unshare"), args: [0x200_0000])) == "unshare(CLONE_NEWCGROUP) = 0")
        #expect(Decoder.line(Syscall(nr: Self.nr("unshare"), args: [0x80])) == "unshare(CLONE_NEWTIME) = 0")
        #expect(
            Decoder.line(
                Syscall(nr: Self.nr("setns"), args: [5, 0x80]), fdPath: { _ in "/proc/1/ns/time_for_children" })
                == "setns(5</proc/1/ns/time_for_children>, CLONE_NEWTIME) = 0")
    }

    /// The kernel side reads each struct by its fixed size (bit 6 with a length: words of 8 bytes).
    @Test func captureSpecsReadTheStructs() {
        let structure = { (arg: UInt32, words: UInt32) in (arg + 1) | 0x40 | words << 3 }
        #expect(SyscallCatalog.entry(126)?.spec == structure(0, 1) | structure(1, 3) << 8)  // capset
        #expect(SyscallCatalog.entry(317)?.spec == structure(2, 2))  // seccomp
        #expect(SyscallCatalog.entry(302)?.spec == structure(2, 2) | structure(3, 2) << 8)  // prlimit64
        // A strings record carrying capset's two structs parses into its slots.
        var event = clab_syscall_strings_event()
        event.ev.kind = UInt16(CLAB_EV_SYSCALL.rawValue)
        event.ev.flags = UInt16(CLAB_F_STRINGS.rawValue)
        event.ev.nr = 126
        event.ev.args = (0x1000, 0x2000, 0, 0, 0, 0)
        event.s.len = (8, 24, 0, 0)
        let bytes =
            Self.le(UInt32(0x2008_0522), UInt32(0)) + Array(repeating: 0, count: 248)
            + Self.le(UInt32(1 << 21), UInt32(1 << 21), UInt32(0), UInt32(0), UInt32(0), UInt32(0))
        withUnsafeMutableBytes(of: &event.s.data) { $0.copyBytes(from: bytes) }
        let call = withUnsafeBytes(of: event) { raw -> Syscall? in
            guard let base = raw.baseAddress, case .syscall(let call) = RecordParser.parse(base, raw.count) else {
                return nil
            }
            return call
        }
        #expect(
            call.map { Decoder.line($0) }
                == "capset({version=_LINUX_CAPABILITY_VERSION_3, pid=0}, {effective=1<<CAP_SYS_ADMIN, permitted=1<<CAP_SYS_ADMIN, inheritable=0}) = 0"
        )
    }

    /// Under stage 12's marker, clab-init's hardening calls (the masks, the cgroup namespace,
    /// the lock-down) are stage 12's, and the title names it; the container's own calls are the
    /// container's, refused or not.
    @Test func clabInitsHardeningIsStage12() {
        let phases = Phases(stage: 12, command: ["sh"])
        let initProcess = TracedProcess(pid: 11, comm: "clab-init", nsPid: 1, nsLevel: 1, fds: [:], phase: .initSetup)
        func label(_ call: Syscall) -> Int? { phases.label(call, in: initProcess, path: { _ in nil })?.stage }
        let pivot = Syscall(nr: Self.nr("pivot_root"), args: [1, 2], strings: [Array(".\0".utf8), Array(".\0".utf8)])
        phases.mark(StageMark.stage(4).value, tid: initProcess.pid, in: initProcess)
        #expect(label(pivot) == 4)
        phases.mark(StageMark.stage(12).value, tid: initProcess.pid, in: initProcess)
        let look = Syscall(
            nr: Self.nr("newfstatat"), args: [UInt64(bitPattern: -100), 0x1, 0x2, 0x100],
            strings: [Array("/proc/kcore\0".utf8)])
        #expect(label(look) == 12)
        #expect(phases.label(look, in: initProcess, path: { _ in nil })?.title == "stage 12 · hardening")
        #expect(label(Syscall(nr: Self.nr("unshare"), args: [0x200_0000])) == 12)
        #expect(label(Syscall(nr: Self.nr("prctl"), args: [24, 21, 0, 0, 0])) == 12)
        #expect(label(Syscall(nr: Self.nr("capset"), args: [0x1000, 0x2000])) == 12)
        #expect(label(Syscall(nr: Self.nr("seccomp"), args: [1, 0, 0x1000])) == 12)
        #expect(Phases.inFocus(Syscall(nr: Self.nr("seccomp"), args: [1, 0, 0x1000]), label: nil))
        let command = TracedProcess(pid: 11, comm: "sh", nsPid: 1, nsLevel: 1, fds: [:], phase: .command)
        let refused = Syscall(nr: Self.nr("unshare"), ret: -1, args: [0x1000_0000])
        #expect(phases.label(refused, in: command, path: { _ in nil }) == phases.commandLabel)
        #expect(Decoder.line(refused) == "unshare(CLONE_NEWUSER) = -1 EPERM (Operation not permitted)")
    }
}

/// A real stage-12 container under the tracer: clab-init's hardening labelled, the filter's
/// install decoded, and the filter refusing the container's unshare.
@Suite("trace · a stage 12 run", tracerAvailable)
struct TraceHardeningRunTests {
    /// At both attach points: with fentry, the refused call never reaches the syscall dispatch
    /// and comes from the return of __secure_computing.
    @Test(arguments: TraceAttachTests.attachPoints)
    func hardeningIsLabelledAndTheFilterRefuses(attach: String) throws {
        try TestEnv.ensureImage()
        let file = TestEnv.root + "/trace-step12-\(UUID().uuidString.prefix(8)).jsonl"
        let out = try runProcess(
            [
                TestEnv.clab, "trace", "--step", "12", "--quiet", "--json", file, "--", "sh", "-c", "unshare -U true",
            ], env: attach.isEmpty ? [:] : ["CLAB_TRACE_ATTACH": attach])
        #expect(out.status == 1, "\(out.stderr)")
        let trace = try JSONTrace(path: file)
        #expect(trace.lost == 0)
        let calls = trace.syscalls
        let stage12 = "stage 12 · hardening"
        func args(_ call: [String: Any]) -> [String] { call["args"] as? [String] ?? [] }
        func named(_ name: String) -> [[String: Any]] { calls.filter { $0["syscall"] as? String == name } }

        let pivot = named("pivot_root").first
        #expect(pivot?["stage"] as? String == "stage 4 · mount namespace + pivot_root")
        let sysBind = named("mount").first { args($0).count > 1 && args($0)[1] == #""/proc/sys""# }
        #expect(sysBind?["stage"] as? String == stage12)

        let drops = named("prctl").filter { args($0).first == "PR_CAPBSET_DROP" }
        #expect(drops.count >= 27)  // 41 capabilities (fewer on older kernels) less Docker's 14
        #expect(drops.allSatisfy { $0["stage"] as? String == stage12 })
        #expect(drops.contains { args($0) == ["PR_CAPBSET_DROP", "CAP_SYS_ADMIN"] })

        // In clab-init's order: capset, no_new_privs, the filter, then the command's unshare.
        let capset = calls.firstIndex { $0["syscall"] as? String == "capset" }
        let noNewPrivs = calls.firstIndex {
            $0["syscall"] as? String == "prctl" && args($0).first == "PR_SET_NO_NEW_PRIVS"
        }
        let seccomp = calls.firstIndex { $0["syscall"] as? String == "seccomp" }
        let refused = calls.firstIndex { $0["syscall"] as? String == "unshare" && args($0) == ["CLONE_NEWUSER"] }
        guard let capset, let noNewPrivs, let seccomp, let refused else {
            Issue.record(
                "missing: capset \(capset as Any), no_new_privs \(noNewPrivs as Any), seccomp \(seccomp as Any), unshare \(refused as Any)"
            )
            return
        }
        #expect(capset < noNewPrivs && noNewPrivs < seccomp && seccomp < refused)
        for i in [capset, noNewPrivs, seccomp] { #expect(calls[i]["stage"] as? String == stage12) }
        #expect(args(calls[capset]).first == "{version=_LINUX_CAPABILITY_VERSION_3, pid=0}")
        #expect(args(calls[capset]).last?.hasPrefix("{effective=1<<CAP_CHOWN|1<<CAP_DAC_OVERRIDE|") == true)
        #expect(args(calls[capset]).last?.contains("CAP_SYS_ADMIN") == false)
        #expect(calls[seccomp]["ret"] as? Int == 0)
        #expect(args(calls[seccomp]).first == "SECCOMP_SET_MODE_FILTER")
        #expect(args(calls[seccomp]).last?.hasPrefix("{len=") == true, "\(calls[seccomp])")
        // The filter answers the container's unshare with EPERM.
        #expect(calls[refused]["errno"] as? String == "EPERM", "\(calls[refused])")
        #expect(calls[refused]["stage"] as? String == "container · sh -c unshare -U true")
    }
}
