import CLibBPF
import Foundation
import Testing

@testable import ClabTrace

/// Issue 12, items 2 and 3: never plausible but wrong, and decoded as strace decodes.
@Suite("trace · as strace shows it")
struct TraceStraceDecodingTests {
    static func nr(_ name: String) -> Int32 { Int32(SyscallCatalog.number(name) ?? -1) }

    @Test func thirtyTwoBitCallsUseTheI386Table() {
        // int $0x80 with eax=20 is getpid, not x86_64's 20 (writev); eax=5 is open, not fstat.
        var getpid = Syscall(nr: 20, ret: 7)
        getpid.compat = true
        #expect(Decoder.line(getpid) == "getpid() = 7")
        var open = Syscall(nr: 5, ret: -14, args: [0, 0])
        open.compat = true
        #expect(Decoder.line(open) == "open(NULL, O_RDONLY) = -1 EFAULT (Bad address)")
        #expect(SyscallCatalog.entry(for: open)?.jsonName == Array(#","syscall":"open","nr":5,"abi":"i386""#.utf8))
    }

    /// x32 calls, from records as the kernel side writes them (number without the bit,
    /// CLAB_F_X32). This machine's kernel has no CONFIG_X86_X32_ABI: every x32 call fails with
    /// ENOSYS there, so a successful one (an fd returned, a struct filled) is only seen here;
    /// `x32CallsAreNamedByTheirTable` traces real (failing) ones end to end.
    @Test func x32CallsUseTheX32Table() {
        func x32(_ nr: Int32, ret: Int64 = 0, _ args: [UInt64], strings: [[UInt8]?] = []) -> Syscall {
            var call = Syscall(nr: nr, ret: ret, args: args, strings: strings)
            call.x32 = true
            return call
        }
        // Below 512: x86_64's call and layouts (the 64-bit handler runs), strings read.
        let open = x32(2, ret: 3, [0x4000_1000, 0], strings: [Array("/etc/hostname".utf8) + [0]])
        #expect(Decoder.line(open) == #"open("/etc/hostname", O_RDONLY) = 3"#)
        #expect(open.sharesX86_64 && open.abi == .x32)
        // A "64" number: ENOSYS for x32, named and shown as strace's printargs.
        let sa64 = x32(13, ret: -38, [17, 0, 0, 8])
        #expect(Decoder.line(sa64) == "rt_sigaction#64(0x11, 0, 0, 0x8) = -1 ENOSYS (Function not implemented)")
        #expect(!sa64.sharesX86_64)
        // x32's own: a compat struct (32-bit pointers) is never read with the 64-bit layout; the
        // pointer is the 32-bit address the kernel uses (the upper half of the register ignored).
        let sa = x32(512, [17, 0xdead_0000_4000_2000, 0, 8], strings: [Array(repeating: 0xff, count: 32)])
        #expect(Decoder.line(sa) == "rt_sigaction(SIGCHLD, 0x40002000, NULL, 8) = 0")
        let recv = x32(519, ret: 5, [3, 0x4000_3000, 0x4000_0000])
        #expect(
            Decoder.line(recv, fdPath: { $0 == 3 ? "socket:[7]" : nil })
                == "recvmsg(3<socket:[7]>, 0x40003000, MSG_CMSG_CLOEXEC) = 5")
        #expect(!recv.sharesX86_64)
        let pw = x32(547, ret: -38, [1, 0, 0, 0, 1, 3])
        #expect(Decoder.line(pw).hasPrefix("pwritev2(1, NULL, 0, 0, RWF_HIPRI) = -1 ENOSYS"))
        #expect(
            Decoder.line(x32(600, ret: -38, [1, 2, 3, 0, 0, 0])).hasPrefix(
                "syscall_0x40000258(0x1, 0x2, 0x3, 0, 0, 0) = -1"))
        #expect(SyscallCatalog.entry(for: recv)?.jsonName == Array(#","syscall":"recvmsg","nr":519,"abi":"x32""#.utf8))
    }

    /// msg_control as strace's msghdr.c shows it, from the bytes the kernel side read.
    @Test func controlMessagesAsStrace() {
        func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> ($0 * 8)) & 0xff) } }
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> ($0 * 8)) & 0xff) } }
        func sendmsg(control: [UInt8], length: UInt64, fds: [MadeFD] = []) -> Syscall {
            // msg_name, namelen, iov, iovlen, control, controllen, flags
            let header = le64(0) + le32(0) + le32(0) + le64(0x2000) + le64(1) + le64(0x3000) + le64(length) + le64(0)
            var call = Syscall(nr: Self.nr("sendmsg"), ret: 1, args: [3, 0x1000, 0])
            call.iov = IOVCapture(
                nr: call.nr, iovlen: 1, entries: [.init(base: 0x4000, length: 1, data: Array("x".utf8))],
                msghdr: header, control: ControlCapture(nr: call.nr, bytes: control, length: length, fds: fds))
            return call
        }
        let rights = le64(20) + le32(1) + le32(1) + le32(5) + [0, 0, 0, 0]
        #expect(
            Decoder.line(sendmsg(control: rights, length: 24), fdPath: { $0 == 5 ? "/etc/hostname" : nil })
                == "sendmsg(3, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"x\", iov_len=1}], msg_iovlen=1, "
                + "msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[5</etc/hostname>]}], "
                + "msg_controllen=24, msg_flags=0}, 0) = 1")
        let creds = le64(28) + le32(1) + le32(2) + le32(42) + le32(1000) + le32(100) + [0, 0, 0, 0]
        #expect(
            Decoder.line(sendmsg(control: creds, length: 32)).contains(
                "msg_control=[{cmsg_len=28, cmsg_level=SOL_SOCKET, cmsg_type=SCM_CREDENTIALS, cmsg_data={pid=42, uid=1000, gid=100}}], msg_controllen=32,"
            ))
        // Two messages, an unknown SOL_SOCKET type and another level (type in hex, no data).
        let two = le64(20) + le32(1) + le32(99) + le32(7) + [0, 0, 0, 0] + le64(20) + le32(0) + le32(8) + le32(1)
        #expect(
            Decoder.line(sendmsg(control: two + [0, 0, 0, 0], length: 48)).contains(
                "msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=0x63 /* SCM_??? */}, {cmsg_len=20, cmsg_level=SOL_IP, cmsg_type=0x8}], msg_controllen=48"
            ))
        // More than was read: `...` after the messages shown; too few bytes for a header: the address.
        #expect(
            Decoder.line(sendmsg(control: rights, length: 4096)).contains("cmsg_data=[5]}, ...], msg_controllen=4096"))
        #expect(Decoder.line(sendmsg(control: [1, 2], length: 2)).contains("msg_control=0x3000, msg_controllen=2"))
        // A receiver's new fd is named as the session found it, not by its (stale) table.
        var recv = sendmsg(control: rights, length: 24)
        let recvmsg = Self.nr("recvmsg")
        recv.nr = recvmsg
        recv.iov?.nr = recvmsg
        recv.iov?.control?.nr = recvmsg
        recv.iov?.control?.names = [5: "pipe:[99]"]
        #expect(Decoder.line(recv, fdPath: { $0 == 5 ? "/old" : nil }).contains("cmsg_data=[5<pipe:[99]>]"))
        // Receive timestamps: a timeval (old and new types), a timespec, SO_TIMESTAMPING's three;
        // tv_usec and tv_nsec unsigned as strace prints them; `???` for a message too short.
        func stamp(_ type: UInt32, _ words: [UInt64]) -> String {
            let control = le64(16 + UInt64(words.count * 8)) + le32(1) + le32(type) + words.flatMap(le64)
            return Decoder.line(sendmsg(control: control, length: UInt64(control.count)))
        }
        #expect(
            stamp(29, [1_796_283_770, 94810]).contains(
                "cmsg_type=SO_TIMESTAMP_OLD, cmsg_data={tv_sec=1796283770, tv_usec=94810}}]"))
        #expect(stamp(63, [5, 6]).contains("cmsg_type=SO_TIMESTAMP_NEW, cmsg_data={tv_sec=5, tv_usec=6}}]"))
        #expect(
            stamp(35, [UInt64(bitPattern: -1), UInt64.max]).contains(
                "cmsg_data={tv_sec=-1, tv_nsec=18446744073709551615}}]"))
        #expect(stamp(64, [7, 8]).contains("cmsg_type=SO_TIMESTAMPNS_NEW, cmsg_data={tv_sec=7, tv_nsec=8}}]"))
        #expect(
            stamp(37, [1, 2, 0, 0, 3, 4]).contains(
                "cmsg_type=SO_TIMESTAMPING_OLD, cmsg_data=[{tv_sec=1, tv_nsec=2}, {tv_sec=0, tv_nsec=0}, {tv_sec=3, tv_nsec=4}]}]"
            ))
        #expect(stamp(65, [1, 2]).contains("cmsg_type=SO_TIMESTAMPING_NEW, cmsg_data=???}"))
        #expect(stamp(29, []).contains("cmsg_type=SO_TIMESTAMP_OLD}]"))
    }

    @Test func anUnreadableArgvIsAnAddressNotEmpty() {
        var call = Syscall(
            nr: Self.nr("execve"), args: [0x1000, 0x2000, 0x3000], strings: [Array("/bin/true".utf8) + [0], nil])
        call.argvUnreadable = true
        #expect(Decoder.line(call) == #"execve("/bin/true", 0x2000, 0x3000) = 0"#)
    }

    @Test func restartsAndKilledCallsAsStrace() {
        let restart = Syscall(nr: Self.nr("pause"), ret: -514)
        #expect(Decoder.line(restart) == "pause() = ? ERESTARTNOHAND (To be restarted if no handler)")
        // Killed inside read: only what is known at entry.
        let killed = Syscall(nr: Self.nr("read"), args: [3, 0x1000, 1], unfinished: true)
        #expect(Decoder.line(killed) == "read(3, <unfinished ...>) = ?")
    }

    @Test func aPathOfExactlyASlotIsNotCut() {
        let name = "/" + String(repeating: "a", count: 254)  // 255 bytes, 256 with the NUL: a full slot
        var call = Syscall(nr: Self.nr("unlink"), strings: [Array(name.utf8) + [0]])
        #expect(Decoder.line(call).hasSuffix(#"a"...) = 0"#))  // alone, a full slot may be cut
        call.replace(slot: 0, with: Array(name.utf8) + [0])
        #expect(Decoder.line(call) == "unlink(\"" + name + "\") = 0")
        // 300 bytes: whole.
        let long = "/" + String(repeating: "b", count: 299)
        var call2 = Syscall(nr: Self.nr("unlink"), strings: [Array(long.utf8.prefix(255)) + [0]])
        call2.replace(slot: 0, with: Array(long.utf8) + [0])
        #expect(Decoder.line(call2) == "unlink(\"" + long + "\") = 0")
        // A long string that does not continue the slot (its own call was lost) is not used.
        var other = Syscall(nr: Self.nr("unlink"), strings: [Array(long.utf8.prefix(255)) + [0]])
        other.replace(slot: 0, with: Array(("/x" + long).utf8) + [0])
        #expect(Decoder.line(other).hasSuffix(#"b"...) = 0"#))
    }

    @Test func structsAsStrace() {
        func le(_ values: [UInt64]) -> [UInt8] { values.flatMap { v in (0..<8).map { UInt8((v >> ($0 * 8)) & 0xff) } } }
        // rt_sigaction(SIGCHLD, {handler, mask all but 32 and 33, SA_RESTORER}, NULL, 8)
        let act = le([0x525892, 0x0400_0000, 0x416390, ~UInt64(0x1_8000_0000)])  // all but signals 32 and 33
        let sa = Syscall(nr: Self.nr("rt_sigaction"), args: [17, 0x1000, 0, 8], strings: [act])
        #expect(
            Decoder.line(sa)
                == "rt_sigaction(SIGCHLD, {sa_handler=0x525892, sa_mask=~[RTMIN RT_1], sa_flags=SA_RESTORER, sa_restorer=0x416390}, NULL, 8) = 0"
        )
        let mask = Syscall(nr: Self.nr("rt_sigprocmask"), args: [1, 0x1000, 0, 8], strings: [le([0x1_8000_0000])])
        #expect(Decoder.line(mask) == "rt_sigprocmask(SIG_UNBLOCK, [RTMIN RT_1], NULL, 8) = 0")
        // struct stat: mode at 24, size at 48.
        var st = [UInt8](repeating: 0, count: 56)
        st.replaceSubrange(24..<28, with: [0xed, 0x81, 0, 0])  // 0o100755
        st.replaceSubrange(48..<56, with: le([1_926_232]))
        let fstat = Syscall(
            nr: Self.nr("newfstatat"), args: [3, 0x1000, 0x2000, 0x1000], strings: [Array("".utf8) + [0], st])
        #expect(
            Decoder.line(fstat, fdPath: { $0 == 3 ? "/usr/lib/libc.so.6" : nil })
                == #"newfstatat(3</usr/lib/libc.so.6>, "", {st_mode=S_IFREG|0755, st_size=1926232, ...}, AT_EMPTY_PATH) = 0"#
        )
        let wait = Syscall(
            nr: Self.nr("wait4"), ret: 42, args: [UInt64(bitPattern: -1), 0x1000, 0, 0], strings: [le([9])])
        #expect(Decoder.line(wait) == "wait4(-1, [{WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL}], 0, NULL) = 42")
        let pipe = Syscall(nr: Self.nr("pipe2"), args: [0x1000, 0o2000000], strings: [[3, 0, 0, 0, 4, 0, 0, 0]])
        #expect(Decoder.line(pipe) == "pipe2([3, 4], O_CLOEXEC) = 0")
        let sleep = Syscall(nr: Self.nr("clock_nanosleep"), args: [0, 0, 0x1000, 0], strings: [le([0, 1000])])
        #expect(Decoder.line(sleep) == "clock_nanosleep(CLOCK_REALTIME, 0, {tv_sec=0, tv_nsec=1000}, NULL) = 0")
    }

    @Test func perOperationArguments() {
        #expect(Decoder.line(Syscall(nr: Self.nr("fcntl"), args: [3, 1, 0x7fff])) == "fcntl(3, F_GETFD) = 0")
        #expect(Decoder.line(Syscall(nr: Self.nr("fcntl"), args: [3, 2, 1])) == "fcntl(3, F_SETFD, FD_CLOEXEC) = 0")
        #expect(
            Decoder.line(Syscall(nr: Self.nr("prctl"), ret: 1, args: [3]))
                == "prctl(PR_GET_DUMPABLE) = 1 (SUID_DUMP_USER)")
        let name = Syscall(nr: Self.nr("prctl"), args: [16, 0x1000], strings: [Array("busybox".utf8) + [0]])
        #expect(Decoder.line(name) == #"prctl(PR_GET_NAME, "busybox") = 0"#)
        #expect(
            Decoder.line(Syscall(nr: Self.nr("madvise"), args: [0x7f00_0000_0000, 8192, 4]))
                == "madvise(0x7f0000000000, 8192, MADV_DONTNEED) = 0")
        #expect(
            Decoder.line(Syscall(nr: Self.nr("rseq"), args: [0x7f00, 32, 0, 0x5305_3053]))
                == "rseq(0x7f00, 0x20, 0, 0x53053053) = 0")
    }

    @Test func signalsAsStrace() {
        var info = [UInt8](repeating: 0, count: 48)
        info.replaceSubrange(0..<4, with: [17, 0, 0, 0])
        info.replaceSubrange(8..<12, with: [1, 0, 0, 0])  // CLD_EXITED
        info.replaceSubrange(16..<20, with: [0x39, 0x30, 0, 0])  // si_pid 12345
        info.replaceSubrange(24..<28, with: [3, 0, 0, 0])
        let chld = SignalDelivery(pid: 1, tid: 1, signal: 17, info: info)
        #expect(
            Decoder.siginfo(chld)
                == "{si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=12345, si_uid=0, si_status=3, si_utime=0, si_stime=0}"
        )
        #expect(Flags.signal(32) == "SIGRTMIN")
    }

    @Test func pathsAreResolvedAsStraceY() throws {
        // /proc/self/root is /: a symlink in the path is followed, relative paths start at the base.
        let dir = TestEnv.root + "/resolve-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "real")
        let pid = UInt32(getpid())
        #expect(ProcessTable.resolve(dir + "/link/f", base: nil, pid: pid) == dir + "/real/f")
        #expect(ProcessTable.resolve("link/f", base: dir, pid: pid) == dir + "/real/f")
        #expect(ProcessTable.resolve("f", base: nil, pid: pid) == "f")  // no base: as given, not guessed
    }
}

/// The comparison with strace on the corpus (bench/compare-strace.py), and the fixes it is
/// about on real traces.
@Suite("trace · compared with strace", tracerAvailable, .serialized)
struct TraceStraceComparisonTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Text view lines of `clab trace --host -- corpus MODE`.
    /// `attach`: "" for clab's default attach point, or the one CLAB_TRACE_ATTACH forces;
    /// `options`: more of `clab trace`'s (`--summary`: the count table instead).
    func traceCorpus(_ mode: String, attach: String = "", options: [String] = []) throws -> String {
        let dir = TestEnv.root + "/corpus-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let binary = dir + "/corpus"
        let cc = try runProcess([
            "/usr/bin/gcc", "-O1", "-pthread", "-o", binary, Self.repo + "/tests-trace/corpus/corpus.c",
        ])
        #expect(cc.status == 0, "\(cc.stderr)")
        let out = try runProcess(
            [TestEnv.clab, "trace", "--host"] + options + ["--", binary, mode, dir],
            env: attach.isEmpty ? [:] : ["CLAB_TRACE_ATTACH": attach])
        #expect(out.status == 0, "\(out.stderr)")
        return out.stderr
    }

    /// At both attach points: with fentry, 32-bit calls come through ia32_sys_call.
    @Test(arguments: TraceAttachTests.attachPoints)
    func thirtyTwoBitCallsAreNotHidden(attach: String) throws {
        let text = try traceCorpus("abi32", attach: attach)
        #expect(text.contains("[ Process PID="))
        #expect(text.contains("open(NULL, O_RDONLY) = -1 EFAULT (Bad address)"), "\(text)")
        #expect(!text.contains("writev("), "\(text)")
    }

    /// x32 calls (the syscall instruction with __X32_SYSCALL_BIT) are named by x32's table and
    /// marked as strace marks them. This kernel lacks CONFIG_X86_X32_ABI, so each fails with
    /// ENOSYS (the calls are still made and traced; a successful x32 call cannot run here: see
    /// x32CallsUseTheX32Table for those).
    @Test func x32CallsAreNamedByTheirTable() throws {
        let text = try traceCorpus("x32")
        #expect(text.contains(#/\[ Process PID=\d+ runs in x32 mode\. \]\n.*  getpid\(\) = /#), "\(text)")
        #expect(text.contains(#"open("/etc/hostname", O_RDONLY) = "#), "\(text)")
        #expect(text.contains("rt_sigaction#64(0x11, 0, 0, 0x8) = "), "\(text)")
        #expect(text.contains("rt_sigaction(SIGCHLD, NULL, NULL, 8) = "), "\(text)")
        #expect(text.contains("syscall_0x40000258(0x1, 0x2, 0x3, 0, 0, 0) = "), "\(text)")
        #expect(text.contains(#/runs in 64 bit mode\. \]\n.*  munmap\(/#), "\(text)")
        #expect(!text.contains("syscall_1073741"), "\(text)")
    }

    /// The kernel-side count keys an x32 call by x32's table, apart from x86_64's.
    @Test func x32CallsAreCountedByTheirOwnTable() throws {
        let summary = try traceCorpus("x32", options: ["--summary"])
        let rows = summary.split(separator: "\n")
        #expect(rows.contains { $0.hasSuffix(" rt_sigaction (x32)") && $0.contains(" 1 ") }, "\(summary)")
        #expect(rows.contains { $0.hasSuffix(" getpid (x32)") }, "\(summary)")
        #expect(rows.contains { $0.hasSuffix(" syscall_0x40000258 (x32)") }, "\(summary)")
    }

    /// SCM_RIGHTS and SCM_CREDENTIALS over a unix socketpair: the control messages decoded on
    /// both sides, the received fds named as strace -y names them (a file by the path the
    /// sender's fd had, a pipe by its inode) and known to the receiver's later calls.
    @Test func controlMessagesOverAUnixSocket() throws {
        let text = try traceCorpus("cmsg")
        let file = "cmsg_type=SCM_RIGHTS, cmsg_data=["
        #expect(
            text.contains(
                #/sendmsg\(3<socket:\[\d+\]>, .*msg_control=\[\{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=\[5</etc/hostname>\]\}\], msg_controllen=24, msg_flags=0\}, 0\) = 1/#
            ), "\(text)")
        #expect(
            text.contains(
                file + "6</etc/hostname>]}], msg_controllen=24, msg_flags=MSG_CMSG_CLOEXEC}, MSG_CMSG_CLOEXEC) = 1"),
            "\(text)")
        #expect(text.contains(#"read(6</etc/hostname>, "#), "\(text)")
        let pipe = try #require(text.firstMatch(of: #/pipe2\(\[5<pipe:\[(\d+)\]>, 6<pipe:/#), "\(text)")
        #expect(text.contains(file + "7<pipe:[\(pipe.1)]>]}], msg_controllen=24, msg_flags=0}, 0) = 1"), "\(text)")
        #expect(text.contains("write(7<pipe:[\(pipe.1)]>, \"x\", 1) = 1"), "\(text)")
        #expect(
            text.split(separator: "\n").filter {
                $0.contains(#/cmsg_type=SCM_CREDENTIALS, cmsg_data=\{pid=\d+, uid=0, gid=0\}/#)
            }.count == 2,
            "\(text)")
        // The receive timestamps, decoded as strace decodes them.
        for (type, field) in [
            ("SO_TIMESTAMP_OLD", "tv_usec"), ("SO_TIMESTAMPNS_OLD", "tv_nsec"), ("SO_TIMESTAMP_NEW", "tv_usec"),
        ] {
            #expect(
                text.contains(
                    try Regex(
                        #"recvmsg\(\d+<socket:\[\d+\]>, .*msg_control=\[\{cmsg_len=32, cmsg_level=SOL_SOCKET, cmsg_type="#
                            + type + #", cmsg_data=\{tv_sec=\d{10}, "# + field
                            + #"=\d+\}\}\], msg_controllen=32, msg_flags=0\}, 0\) = 1"#)),
                "\(type): \(text)")
        }
    }

    /// The kernel-side count keys a 32-bit call by its own table: getpid (i386), not writev.
    @Test func thirtyTwoBitCallsAreCountedByTheirOwnTable() throws {
        let summary = try traceCorpus("abi32", options: ["--summary"])
        let rows = summary.split(separator: "\n")
        #expect(rows.contains { $0.hasSuffix(" getpid (i386)") && $0.contains(" 1 ") }, "\(summary)")
        #expect(rows.contains { $0.hasSuffix(" open (i386)") }, "\(summary)")
        #expect(!rows.contains { $0.hasSuffix(" writev") || $0.hasSuffix(" fstat") }, "\(summary)")
    }

    /// At both attach points: with fentry, the killed call's fexit never comes.
    @Test(arguments: TraceAttachTests.attachPoints)
    func aKilledCallIsUnfinished(attach: String) throws {
        let text = try traceCorpus("killed", attach: attach)
        #expect(text.contains(/read\(3<pipe:\[\d+\]>, <unfinished ...>\) = \?/), "\(text)")
        #expect(text.contains("+++ killed by SIGKILL +++"), "\(text)")
        #expect(!text.contains("ERESTARTSYS"), "\(text)")
        #expect(text.contains("+++ exited with 0 +++"), "\(text)")
    }

    @Test func execsAfterVforkAndLongPathsAreWhole() throws {
        let exec = try traceCorpus("exec")
        #expect(exec.contains(#"execve("/bin/busybox", ["busybox", "true", "after", "vfork"]"#), "\(exec)")
        #expect(!exec.split(separator: "\n").contains { $0.contains("execve(") && $0.contains(", [], ") }, "\(exec)")
        let paths = try traceCorpus("paths")
        let long = String(repeating: "a", count: 255)
        #expect(paths.contains(long + #"", O_WRONLY|O_CREAT, 0600)"#), "\(paths)")
        #expect(
            paths.contains("/" + String(repeating: "b", count: 150) + "/" + String(repeating: "a", count: 140) + "\""))
    }

    @Test func pipesSocketsThreadsAndSignalsAsStrace() throws {
        // pipe:[inode] for both ends, the same inode; dup3's new fd named after the call.
        let pipes = try traceCorpus("pipes")
        let pipe = try #require(
            pipes.firstMatch(of: /pipe2\(\[3<pipe:\[(\d+)\]>, 4<pipe:\[(\d+)\]>\], 0\) = 0/), "\(pipes)")
        #expect(pipe.1 == pipe.2 && pipe.1 != "0")
        #expect(pipes.contains("dup3(3<pipe:[\(pipe.1)]>, 21, O_CLOEXEC) = 21<pipe:[\(pipe.1)]>"), "\(pipes)")
        let sockets = try traceCorpus("sockets")
        #expect(
            sockets.contains(
                /socketpair\(AF_UNIX, SOCK_STREAM\|SOCK_CLOEXEC, 0, \[3<socket:\[\d+\]>, 4<socket:\[\d+\]>\]\)/))
        #expect(
            sockets.contains(/accept4\(3<socket:\[\d+\]>, NULL, NULL, SOCK_CLOEXEC\) = 5<socket:\[\d+\]>/), "\(sockets)"
        )
        // A thread's own end, and SIGCHLD at SIG_DFL (discarded by the kernel) where strace shows it.
        let threads = try traceCorpus("threads")
        #expect(
            threads.split(separator: "\n").filter { $0.hasSuffix("+++ exited with 0 +++") }.count == 2, "\(threads)")
        let signals = try traceCorpus("signals")
        #expect(signals.contains("rt_sigreturn({mask=[]}) = 0"), "\(signals)")
        #expect(signals.contains("--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED,"), "\(signals)")
        // SIGTERM at SIG_DFL ends the child at once (no delivery untraced): shown before its end.
        #expect(
            signals.contains(
                /--- SIGTERM \{si_signo=SIGTERM, si_code=SI_USER, si_pid=\d+, si_uid=0\} ---\n.*\+\+\+ killed by SIGTERM \+\+\+/
            ),
            "\(signals)")
    }

    /// The figures README gives: they may not drop.
    @Test func corpusMatchesStrace() throws {
        let out = try runProcess([
            "/usr/bin/python3", Self.repo + "/bench/compare-strace.py", "--clab", TestEnv.clab, "--min-identical", "94",
            "--min-cosmetic", "97", "--show", "10",
        ])
        #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
    }
}
