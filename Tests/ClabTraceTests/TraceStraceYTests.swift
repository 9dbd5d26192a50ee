import CLibBPF
import Foundation
import Testing

@testable import ClabTrace

/// Issue 12, item 3: strace -y's names for pipes and sockets, return values strace decodes, the
/// order strace writes flags in, rt_sigreturn's mask, thread ends and ignored signals.
@Suite("trace · strace -y names, returns, signals")
struct TraceStraceYTests {
    static func nr(_ name: String) -> Int32 { Int32(SyscallCatalog.number(name) ?? -1) }
    static let pipeMode: UInt32 = 0o010600
    static let socketMode: UInt32 = 0o140777

    @Test func pipeAndSocketPairsAreNamedByInode() {
        var pipe = Syscall(nr: Self.nr("pipe2"), args: [0x1000, 0o2000000], strings: [[3, 0, 0, 0, 4, 0, 0, 0]])
        pipe.attach([MadeFD(fd: 3, mode: Self.pipeMode, inode: 77), MadeFD(fd: 4, mode: Self.pipeMode, inode: 77)])
        #expect(Decoder.line(pipe) == "pipe2([3<pipe:[77]>, 4<pipe:[77]>], O_CLOEXEC) = 0")
        var pair = Syscall(
            nr: Self.nr("socketpair"), args: [1, 0o2000001, 0, 0x1000], strings: [[5, 0, 0, 0, 6, 0, 0, 0]])
        pair.attach([MadeFD(fd: 5, mode: Self.socketMode, inode: 90), MadeFD(fd: 6, mode: Self.socketMode, inode: 91)])
        #expect(
            Decoder.line(pair)
                == "socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0, [5<socket:[90]>, 6<socket:[91]>]) = 0")
        // Unknown (no fds record): the numbers alone, never a guess.
        let plain = Syscall(nr: Self.nr("pipe2"), args: [0x1000, 0], strings: [[3, 0, 0, 0, 4, 0, 0, 0]])
        #expect(Decoder.line(plain) == "pipe2([3, 4], 0) = 0")
    }

    @Test func anFdsRecordIsKeptOnlyByItsOwnCall() {
        let fds = [MadeFD(fd: 3, mode: Self.pipeMode, inode: 77), MadeFD(fd: 4, mode: Self.pipeMode, inode: 77)]
        // Another pair (its own call was lost): not named.
        var other = Syscall(nr: Self.nr("pipe2"), args: [0x1000, 0], strings: [[7, 0, 0, 0, 8, 0, 0, 0]])
        other.attach(fds)
        #expect(Decoder.line(other) == "pipe2([7, 8], 0) = 0")
        // Another call altogether.
        var read = Syscall(nr: Self.nr("read"), ret: 3, args: [3, 0x1000, 3])
        read.attach(fds)
        #expect(read.madeFDs.isEmpty)
        // socket() that returned another fd.
        var socket = Syscall(nr: Self.nr("socket"), ret: 9, args: [1, 1, 0])
        socket.attach([MadeFD(fd: 3, mode: Self.socketMode, inode: 5)])
        #expect(socket.madeFDs.isEmpty)
        // A file that is neither: no name.
        #expect(MadeFD(fd: 3, mode: 0o100644, inode: 5).name == nil)
    }

    @Test func theFdTableNamesSocketsAndPipesAsStraceY() {
        let table = ProcessTable()
        let p = table.process(4242)
        var socket = Syscall(nr: Self.nr("socket"), pid: 4242, ret: 3, args: [16, 3, 0])  // AF_NETLINK
        socket.attach([MadeFD(fd: 3, mode: Self.socketMode, inode: 5150)])
        table.apply(socket, to: p)
        #expect(p.path(of: 3) == "socket:[5150]")
        // The stage view still knows it is netlink, through dup2 too.
        #expect(p.stagePath(of: 3) == "socket:AF_NETLINK")
        table.apply(Syscall(nr: Self.nr("dup2"), pid: 4242, ret: 7, args: [3, 7]), to: p)
        #expect(p.path(of: 7) == "socket:[5150]")
        #expect(p.stagePath(of: 7) == "socket:AF_NETLINK")
        var pipe = Syscall(
            nr: Self.nr("pipe2"), pid: 4242, args: [0x1000, 0o2000000], strings: [[4, 0, 0, 0, 5, 0, 0, 0]])
        pipe.attach([MadeFD(fd: 4, mode: Self.pipeMode, inode: 9), MadeFD(fd: 5, mode: Self.pipeMode, inode: 9)])
        table.apply(pipe, to: p)
        #expect(p.fds[4] == OpenFile(path: "pipe:[9]", cloexec: true))
        var accept = Syscall(nr: Self.nr("accept4"), pid: 4242, ret: 6, args: [3, 0, 0, 0o2000000])
        accept.attach([MadeFD(fd: 6, mode: Self.socketMode, inode: 5151)])
        table.apply(accept, to: p)
        #expect(p.path(of: 6) == "socket:[5151]")
        // A socket whose fds record is missing keeps the family.
        table.apply(Syscall(nr: Self.nr("socket"), pid: 4242, ret: 8, args: [2, 2, 0]), to: p)
        #expect(p.path(of: 8) == "socket:AF_INET")
        // dup2's new fd is named by what it was before the call.
        #expect(
            Decoder.line(Syscall(nr: Self.nr("dup2"), ret: 1, args: [4, 1]), fdPath: { p.path(of: $0) })
                == "dup2(4<pipe:[9]>, 1) = 1")
    }

    @Test func returnValuesAsStraceDecodesThem() {
        #expect(Decoder.line(Syscall(nr: Self.nr("umask"), ret: 0o22, args: [0o22])) == "umask(022) = 022")
        #expect(
            Decoder.line(Syscall(nr: Self.nr("fcntl"), ret: 0x8000, args: [3, 3]))
                == "fcntl(3, F_GETFL) = 0x8000 (flags O_RDONLY|O_LARGEFILE)")
        #expect(
            Decoder.line(Syscall(nr: Self.nr("fcntl"), ret: 1, args: [3, 1]))
                == "fcntl(3, F_GETFD) = 0x1 (flags FD_CLOEXEC)")
        #expect(Decoder.line(Syscall(nr: Self.nr("fcntl"), ret: 0, args: [3, 1])) == "fcntl(3, F_GETFD) = 0")
        #expect(
            Decoder.line(Syscall(nr: Self.nr("prctl"), ret: 1, args: [3]))
                == "prctl(PR_GET_DUMPABLE) = 1 (SUID_DUMP_USER)")
        // Failures stay failures.
        #expect(
            Decoder.line(Syscall(nr: Self.nr("fcntl"), ret: -9, args: [99, 3]))
                == "fcntl(99, F_GETFL) = -1 EBADF (Bad file descriptor)")
    }

    @Test func flagsInStracesOrder() {
        let open = Syscall(
            nr: Self.nr("openat"), ret: 3, args: [UInt64(bitPattern: -100), 0x1000, 0o2204000],
            strings: [Array("/usr/lib".utf8) + [0]])
        #expect(Decoder.line(open) == #"openat(AT_FDCWD, "/usr/lib", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3"#)
        func le(_ values: [UInt64]) -> [UInt8] { values.flatMap { v in (0..<8).map { UInt8((v >> ($0 * 8)) & 0xff) } } }
        let act = le([0x1234, 0x1C00_0004, 0x5678, 0])
        let sa = Syscall(nr: Self.nr("rt_sigaction"), args: [33, 0x1000, 0, 8], strings: [act])
        #expect(
            Decoder.line(sa)
                == "rt_sigaction(SIGRT_1, {sa_handler=0x1234, sa_mask=[], sa_flags=SA_RESTORER|SA_ONSTACK|SA_RESTART|SA_SIGINFO, sa_restorer=0x5678}, NULL, 8) = 0"
        )
        #expect(
            Decoder.line(Syscall(nr: Self.nr("accept4"), ret: 5, args: [3, 0, 0, 0o2000000]))
                == "accept4(3, NULL, NULL, SOCK_CLOEXEC) = 5")
        #expect(
            Decoder.line(Syscall(nr: Self.nr("socket"), ret: 3, args: [2, 2, 0]))
                == "socket(AF_INET, SOCK_DGRAM, IPPROTO_IP) = 3")
        #expect(
            Decoder.line(Syscall(nr: Self.nr("socket"), ret: 3, args: [1, 1, 0]))
                == "socket(AF_UNIX, SOCK_STREAM, 0) = 3")
    }

    @Test func anEmptyResultIsAnEmptyString() {
        let list = Syscall(
            nr: Self.nr("listxattr"), ret: 0, args: [0x1000, 0x2000, 64], strings: [Array("/f".utf8) + [0], nil])
        #expect(Decoder.line(list) == #"listxattr("/f", "", 64) = 0"#)
        // Not read because the call failed: the address.
        let failed = Syscall(
            nr: Self.nr("listxattr"), ret: -2, args: [0x1000, 0x2000, 64], strings: [Array("/f".utf8) + [0], nil])
        #expect(Decoder.line(failed) == #"listxattr("/f", 0x2000, 64) = -1 ENOENT (No such file or directory)"#)
    }

    @Test func rtSigreturnShowsTheMaskItRestores() {
        let entry = SyscallCatalog.entry(Int(Self.nr("rt_sigreturn")))
        #expect((entry?.spec ?? 0) & UInt32(CLAB_CAP_AT_ENTRY) != 0)  // read before the frame is gone
        let call = Syscall(
            nr: Self.nr("rt_sigreturn"), ret: 0, args: [0x7ffd_0000], strings: [[0, 0x08, 0, 0, 0, 0, 0, 0]])
        #expect(Decoder.line(call) == "rt_sigreturn({mask=[USR2]}) = 0")
        // Unreadable: the address, not an empty mask.
        let unread = Syscall(nr: Self.nr("rt_sigreturn"), ret: 0, args: [0x7ffd_0000])
        #expect(Decoder.line(unread) == "rt_sigreturn(0x7ffd0000) = 0")
    }

    @Test func pollAndEpollStructs() {
        // Two pollfds: fd 3 POLLIN with revents POLLIN, fd 5 POLLIN with none.
        let fds: [UInt8] = [3, 0, 0, 0, 1, 0, 1, 0, 5, 0, 0, 0, 1, 0, 0, 0] + [UInt8](repeating: 0, count: 40)
        let poll = Syscall(nr: Self.nr("poll"), ret: 1, args: [0x1000, 2, 0], strings: [fds])
        #expect(
            Decoder.line(poll, fdPath: { $0 == 3 ? "pipe:[7]" : nil })
                == "poll([{fd=3<pipe:[7]>, events=POLLIN}, {fd=5, events=POLLIN}], 2, 0) = 1 ([{fd=3, revents=POLLIN}])"
        )
        let timeout = Syscall(nr: Self.nr("poll"), ret: 0, args: [0x1000, 1, 10], strings: [fds])
        #expect(Decoder.line(timeout) == "poll([{fd=3, events=POLLIN}], 1, 10) = 0 (Timeout)")
        // Not read (the array was at the end of a page): the address, and a plain count.
        let unread = Syscall(nr: Self.nr("poll"), ret: 1, args: [0x1000, 2, 0])
        #expect(Decoder.line(unread) == "poll(0x1000, 2, 0) = 1")
        let event: [UInt8] = [1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        let ctl = Syscall(nr: Self.nr("epoll_ctl"), args: [6, 1, 3, 0x1000], strings: [event])
        #expect(Decoder.line(ctl) == "epoll_ctl(6, EPOLL_CTL_ADD, 3, {events=EPOLLIN, data={u32=3, u64=3}}) = 0")
        let wait = Syscall(
            nr: Self.nr("epoll_wait"), ret: 1, args: [6, 0x1000, 1, 0],
            strings: [event + [UInt8](repeating: 0, count: 40)])
        #expect(Decoder.line(wait) == "epoll_wait(6, [{events=EPOLLIN, data={u32=3, u64=3}}], 1, 0) = 1")
        // A failed wait filled nothing.
        let failed = Syscall(nr: Self.nr("epoll_wait"), ret: -4, args: [6, 0x1000, 1, 0])
        #expect(Decoder.line(failed) == "epoll_wait(6, 0x1000, 1, 0) = -1 EINTR (Interrupted system call)")
    }

    @Test func iovecsAndMsghdrs() {
        let ab = IOVCapture.Entry(base: 0x1000, length: 2, data: Array("ab".utf8))
        let cd = IOVCapture.Entry(base: 0x2000, length: 3, data: Array("cd\n".utf8))
        var writev = Syscall(nr: Self.nr("writev"), ret: 5, args: [3, 0x3000, 2])
        writev.attach(IOVCapture(nr: Self.nr("writev"), iovlen: 2, entries: [ab, cd]))
        #expect(
            Decoder.line(writev) == #"writev(3, [{iov_base="ab", iov_len=2}, {iov_base="cd\n", iov_len=3}], 2) = 5"#)
        // A read shows what it filled; one that failed, the address; another call's record is not used.
        let filled = IOVCapture.Entry(base: 0x1000, length: 16, data: Array("msg".utf8))
        var readv = Syscall(nr: Self.nr("readv"), ret: 3, args: [3, 0x3000, 1])
        readv.attach(IOVCapture(nr: Self.nr("readv"), iovlen: 1, entries: [filled]))
        #expect(Decoder.line(readv) == #"readv(3, [{iov_base="msg", iov_len=16}], 1) = 3"#)
        var other = Syscall(nr: Self.nr("readv"), ret: 3, args: [3, 0x3000, 1])
        other.attach(IOVCapture(nr: Self.nr("writev"), iovlen: 1, entries: [filled]))
        #expect(Decoder.line(other) == "readv(3, 0x3000, 1) = 3")
        let failed = Syscall(nr: Self.nr("readv"), ret: -11, args: [3, 0x3000, 1])
        #expect(Decoder.line(failed) == "readv(3, 0x3000, 1) = -1 EAGAIN (Resource temporarily unavailable)")
        // Longer than was read (64 bytes of a buffer): "..." after it.
        let long = IOVCapture.Entry(base: 0x1000, length: 100, data: [UInt8](repeating: 0x61, count: 64))
        var big = Syscall(nr: Self.nr("writev"), ret: 100, args: [3, 0x3000, 1])
        big.attach(IOVCapture(nr: Self.nr("writev"), iovlen: 1, entries: [long]))
        #expect(Decoder.line(big).contains(String(repeating: "a", count: 64) + #""..., iov_len=100}]"#))
        // struct user_msghdr: name NULL, one iovec, no control.
        var header = [UInt8](repeating: 0, count: 56)
        header[16] = 0x00
        header[17] = 0x30  // msg_iov = 0x3000
        header[24] = 1  // msg_iovlen
        var recvmsg = Syscall(nr: Self.nr("recvmsg"), ret: 3, args: [3, 0x4000, 0])
        recvmsg.attach(IOVCapture(nr: Self.nr("recvmsg"), iovlen: 1, entries: [filled], msghdr: header))
        #expect(
            Decoder.line(recvmsg)
                == #"recvmsg(3, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="msg", iov_len=16}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 3"#
        )
    }

    @Test func largeStructsRecordedWhole() {
        var uts = [UInt8](repeating: 0, count: 130)
        uts.replaceSubrange(0..<5, with: Array("Linux".utf8))
        uts.replaceSubrange(65..<67, with: Array("vm".utf8))
        var uname = Syscall(nr: Self.nr("uname"), args: [0x1000])
        uname.attach(blob: uts, nr: Self.nr("uname"))
        #expect(Decoder.line(uname) == #"uname({sysname="Linux", nodename="vm", ...}) = 0"#)
        // Another call's struct, or a failed call: the address.
        var other = Syscall(nr: Self.nr("uname"), args: [0x1000])
        other.attach(blob: uts, nr: Self.nr("sysinfo"))
        #expect(Decoder.line(other) == "uname(0x1000) = 0")
        var stx = [UInt8](repeating: 0, count: 256)
        stx.replaceSubrange(0..<4, with: [0xff, 0x1f, 0, 0])  // STATX_ALL|STATX_MNT_ID
        stx.replaceSubrange(28..<30, with: [0xed, 0x81])  // S_IFREG|0755
        stx[40] = 3
        var statx = Syscall(
            nr: Self.nr("statx"), args: [UInt64(bitPattern: -100), 0x1000, 0x900, 0xfff, 0x2000],
            strings: [Array("/etc/hostname".utf8) + [0]])
        statx.attach(blob: stx, nr: Self.nr("statx"))
        #expect(
            Decoder.line(statx)
                == #"statx(AT_FDCWD, "/etc/hostname", AT_STATX_SYNC_AS_STAT|AT_SYMLINK_NOFOLLOW|AT_NO_AUTOMOUNT, STATX_ALL, {stx_mask=STATX_ALL|STATX_MNT_ID, stx_attributes=0, stx_mode=S_IFREG|0755, stx_size=3, ...}) = 0"#
        )
        var info = [UInt8](repeating: 0, count: 112)
        info[0] = 7
        info[80] = 9
        info[104] = 1
        var sysinfo = Syscall(nr: Self.nr("sysinfo"), args: [0x1000])
        sysinfo.attach(blob: info, nr: Self.nr("sysinfo"))
        #expect(
            Decoder.line(sysinfo)
                == "sysinfo({uptime=7, loads=[0, 0, 0], totalram=0, freeram=0, sharedram=0, bufferram=0, totalswap=0, freeswap=0, procs=9, totalhigh=0, freehigh=0, mem_unit=1}) = 0"
        )
    }

    @Test func futexByOperation() {
        #expect(
            Decoder.line(Syscall(nr: Self.nr("futex"), args: [0x7f00, 265, 42, 0, 0, 0xFFFF_FFFF]))
                == "futex(0x7f00, FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME, 42, NULL, FUTEX_BITSET_MATCH_ANY) = 0")
        #expect(
            Decoder.line(Syscall(nr: Self.nr("futex"), ret: 1, args: [0x7f00, 129, 1, 0x55, 0x66, 0x77]))
                == "futex(0x7f00, FUTEX_WAKE_PRIVATE, 1) = 1")
        #expect(
            Decoder.line(Syscall(nr: Self.nr("futex"), args: [0x7f00, 128, 2, 0x7ffd_1000]))
                == "futex(0x7f00, FUTEX_WAIT_PRIVATE, 2, 0x7ffd1000) = 0")
    }

    @Test func clone3ShowsTheParentTidItStored() {
        func le(_ values: [UInt64]) -> [UInt8] { values.flatMap { v in (0..<8).map { UInt8((v >> ($0 * 8)) & 0xff) } } }
        let args = le([0x10_0000, 0, 0, 0x7f00, 0, 0, 0, 0])  // CLONE_PARENT_SETTID, parent_tid=0x7f00
        let call = Syscall(nr: Self.nr("clone3"), ret: 4242, args: [0x1000, 88], strings: [args])
        #expect(
            Decoder.line(call)
                == "clone3({flags=CLONE_PARENT_SETTID, parent_tid=0x7f00, exit_signal=0} => {parent_tid=[4242]}, 88) = 4242"
        )
        let failed = Syscall(nr: Self.nr("clone3"), ret: -1, args: [0x1000, 88], strings: [args])
        #expect(!Decoder.line(failed).contains("=>"))
    }

    @Test func threadEndsAndIgnoredSignalsAreParsed() {
        var exit = clab_proc_event()
        exit.kind = UInt16(CLAB_EV_EXIT.rawValue)
        exit.flags = UInt16(CLAB_F_THREAD.rawValue)
        exit.pid = 10
        exit.tid = 11
        withUnsafeBytes(of: exit) { raw in
            guard let base = raw.baseAddress else { return }
            guard case .threadExit(let pid, let tid, let status) = RecordParser.parse(base, raw.count) else {
                Issue.record("not a thread exit")
                return
            }
            #expect(pid == 10 && tid == 11 && status == 0)
        }
        #expect(TraceSession.end(0x300) == "+++ exited with 3 +++")
        #expect(TraceSession.end(9) == "+++ killed by SIGKILL +++")
        var signal = clab_signal_event()
        signal.kind = UInt16(CLAB_EV_SIGNAL.rawValue)
        signal.flags = UInt16(CLAB_SIG_IGNORED)
        signal.sig = 17
        withUnsafeBytes(of: signal) { raw in
            guard let base = raw.baseAddress, case .signal(let s) = RecordParser.parse(base, raw.count) else {
                Issue.record("not a signal")
                return
            }
            #expect(s.ignored && !s.fatal && s.signal == 17)
        }
        signal.flags = UInt16(CLAB_SIG_FATAL)
        signal.sig = 15
        withUnsafeBytes(of: signal) { raw in
            guard let base = raw.baseAddress, case .signal(let s) = RecordParser.parse(base, raw.count) else {
                Issue.record("not a signal")
                return
            }
            #expect(s.fatal && !s.ignored && s.signal == 15)
        }
        var fds = clab_fds_event()
        fds.kind = UInt16(CLAB_EV_FDS.rawValue)
        fds.count = 1
        fds.tid = 12
        fds.fd = (3, -1)
        fds.mode = (Self.socketMode, 0)
        fds.ino = (4040, 0)
        withUnsafeBytes(of: fds) { raw in
            guard let base = raw.baseAddress, case .fds(let tid, let made) = RecordParser.parse(base, raw.count) else {
                Issue.record("not an fds record")
                return
            }
            #expect(tid == 12 && made == [MadeFD(fd: 3, mode: Self.socketMode, inode: 4040)])
        }
    }
}
