import CLibBPF
import Foundation
import Testing

@testable import ClabCLI
@testable import ClabTrace

/// The decoders against known raw values: what the kernel side hands over, what a learner reads.
@Suite("trace · decoding")
struct TraceDecoderTests {
    static func nr(_ name: String) -> Int32 { Int32(SyscallCatalog.number(name) ?? -1) }

    static func cString(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

    @Test func syscallTableComesFromTheKernelHeaders() {
        #expect(SyscallCatalog.name(0) == "read")
        #expect(SyscallCatalog.name(59) == "execve")
        #expect(SyscallCatalog.number("pivot_root") == 155)
        #expect(SyscallCatalog.number("clone3") == 435)
        #expect(SyscallCatalog.name(999) == "syscall_999")
        #expect(Decoder.errnoName(1) == "EPERM")
        #expect(Decoder.errnoName(11) == "EAGAIN")
        #expect(Decoder.errnoName(512) == "ERESTARTSYS")
    }

    @Test func openatWithPathAndFlags() {
        let call = Syscall(
            nr: Self.nr("openat"), ret: 3, args: [UInt64(bitPattern: -100), 0x1000, 0o2000000],
            strings: [Self.cString("/etc/hostname")])
        #expect(Decoder.line(call) == #"openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3"#)
        // The mode shows only when the flags create a file.
        let create = Syscall(
            nr: Self.nr("openat"), ret: 4, args: [UInt64(bitPattern: -100), 0x1000, 0o1101, 0o644],
            strings: [Self.cString("/tmp/x")])
        #expect(Decoder.line(create) == #"openat(AT_FDCWD, "/tmp/x", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 4"#)
    }

    @Test func failuresCarryTheErrnoName() {
        let call = Syscall(
            nr: Self.nr("execve"), ret: -2, args: [0x1000, 0x2000, 0x3000], strings: [Self.cString("/nope"), nil],
            argv: [Array("nope".utf8)])
        #expect(Decoder.line(call) == #"execve("/nope", ["nope"], 0x3000) = -1 ENOENT (No such file or directory)"#)
        let perm = Syscall(nr: Self.nr("unshare"), ret: -1, args: [0x1000_0000])
        #expect(Decoder.line(perm) == "unshare(CLONE_NEWUSER) = -1 EPERM (Operation not permitted)")
    }

    @Test func namespaceFlagsByName() {
        let unshare = Syscall(nr: Self.nr("unshare"), args: [0x20000 | 0x4000000 | 0x80])
        #expect(Decoder.line(unshare) == "unshare(CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWTIME) = 0")
        let setns = Syscall(nr: Self.nr("setns"), args: [5, 0x4000_0000])
        #expect(Decoder.line(setns) == "setns(5, CLONE_NEWNET) = 0")
        let clone = Syscall(nr: Self.nr("clone"), ret: 42, args: [0x1200011, 0, 0, 0x7f00, 0])
        #expect(
            Decoder.line(clone)
                == "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f00) = 42"
        )
    }

    @Test func clone3ReadsItsStruct() {
        var args = [UInt8](repeating: 0, count: 88)
        let flags: UInt64 = 0x1000 | 0x20000 | 0x4000000 | 0x2000_0000  // PIDFD|NEWNS|NEWUTS|NEWPID
        withUnsafeBytes(of: flags) { args.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: UInt64(0x7ffd_0000)) { args.replaceSubrange(8..<16, with: $0) }
        withUnsafeBytes(of: UInt64(17)) { args.replaceSubrange(32..<40, with: $0) }
        let call = Syscall(nr: Self.nr("clone3"), ret: 4242, args: [0x1000, 88], strings: [args])
        #expect(
            Decoder.line(call)
                == "clone3({flags=CLONE_PIDFD|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWPID, pidfd=0x7ffd0000, exit_signal=SIGCHLD}, 88) = 4242"
        )
    }

    @Test func mountAndFriends() {
        let makePrivate = Syscall(
            nr: Self.nr("mount"), args: [0, 0x1000, 0, 16384 | (1 << 18), 0],
            strings: [nil, Self.cString("/"), nil, nil]
        )
        #expect(Decoder.line(makePrivate) == #"mount(NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL) = 0"#)
        let proc = Syscall(
            nr: Self.nr("mount"), args: [0x1, 0x2, 0x3, 2 | 4 | 8, 0],
            strings: [Self.cString("proc"), Self.cString("/r/proc"), Self.cString("proc"), nil])
        #expect(Decoder.line(proc) == #"mount("proc", "/r/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL) = 0"#)
        let magic = Syscall(nr: Self.nr("mount"), args: [0, 0, 0, 0xC0ED_0000 | 4096, 0])
        #expect(Decoder.args(magic)[3] == "MS_MGC_VAL|MS_BIND")
        let umount = Syscall(nr: Self.nr("umount2"), args: [0x1, 2], strings: [Self.cString(".")])
        #expect(Decoder.line(umount) == #"umount2(".", MNT_DETACH) = 0"#)
        let pivot = Syscall(nr: Self.nr("pivot_root"), args: [1, 2], strings: [Self.cString("."), Self.cString(".")])
        #expect(Decoder.line(pivot) == #"pivot_root(".", ".") = 0"#)
    }

    @Test func hostnameIsReadByLength() {
        // sethostname's name has no NUL: the kernel side reads `len` bytes.
        let call = Syscall(nr: Self.nr("sethostname"), args: [0x1000, 3], strings: [Array("web".utf8)])
        #expect(Decoder.line(call) == #"sethostname("web", 3) = 0"#)
    }

    @Test func buffersAreQuotedLikeStrace() {
        #expect(Decoder.quote(Array("hi\n".utf8)) == #""hi\n""#)
        #expect(Decoder.quote([0x22, 0x5C, 0x09]) == #""\"\\\t""#)
        #expect(Decoder.quote([0, 0x31]) == #""\0001""#)
        #expect(Decoder.quote([0x1B, 0x41]) == #""\33A""#)
        #expect(Decoder.quote([0x7F, 0x45, 0x4C, 0x46]) == #""\177ELF""#)
        #expect(Decoder.quote(Array("abc".utf8), truncated: true) == #""abc"..."#)
        let write = Syscall(nr: Self.nr("write"), ret: 3, args: [1, 0x1000, 3], strings: [Array("hi\n".utf8)])
        #expect(
            Decoder.line(write, fdPath: { $0 == 1 ? "/dev/pts/0" : nil }) == #"write(1</dev/pts/0>, "hi\n", 3) = 3"#)
        // A failed read has nothing in its buffer.
        let read = Syscall(nr: Self.nr("read"), ret: -9, args: [7, 0x1000, 10])
        #expect(Decoder.line(read) == "read(7, 0x1000, 10) = -1 EBADF (Bad file descriptor)")
    }

    @Test func socketsAndAddresses() {
        let socket = Syscall(nr: Self.nr("socket"), ret: 3, args: [16, 3 | 0o2000000, 0])
        #expect(Decoder.line(socket) == "socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE) = 3")
        let inet: [UInt8] = [2, 0, 0x1F, 0x90, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        let connect = Syscall(nr: Self.nr("connect"), args: [3, 0x1000, 16], strings: [inet])
        #expect(
            Decoder.args(connect)[1] == #"{sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("10.0.0.1")}"#)
        let netlink: [UInt8] = [16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
        let bind = Syscall(nr: Self.nr("bind"), args: [3, 0x1000, 12], strings: [netlink])
        #expect(Decoder.args(bind)[1] == "{sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000001}")
        let unix = [1, 0] + Array("/run/x.sock".utf8) + [0]
        let unixBind = Syscall(nr: Self.nr("bind"), args: [3, 0x1000, 14], strings: [unix])
        #expect(Decoder.args(unixBind)[1] == #"{sa_family=AF_UNIX, sun_path="/run/x.sock"}"#)
    }

    @Test func processCalls() {
        #expect(Decoder.line(Syscall(nr: Self.nr("kill"), args: [42, 9])) == "kill(42, SIGKILL) = 0")
        let wait = Syscall(nr: Self.nr("wait4"), ret: 42, args: [UInt64(UInt32(bitPattern: -1)), 0x10, 1, 0])
        #expect(Decoder.line(wait) == "wait4(-1, 0x10, WNOHANG, NULL) = 42")
        let prctl = Syscall(nr: Self.nr("prctl"), args: [1, 9, 0, 0, 0])
        #expect(Decoder.line(prctl) == "prctl(PR_SET_PDEATHSIG, SIGKILL, NULL, NULL, NULL) = 0")
        let exit = Syscall(nr: Self.nr("exit_group"), args: [3], noReturn: true)
        #expect(Decoder.line(exit) == "exit_group(3) = ?")
        let ids = Syscall(nr: Self.nr("setresuid"), args: [0, 0, 0])
        #expect(Decoder.line(ids) == "setresuid(0, 0, 0) = 0")
        let mmap = Syscall(nr: Self.nr("mmap"), ret: 0x7f00_0000, args: [0, 4096, 3, 0x22, UInt64(UInt32.max), 0])
        #expect(
            Decoder.line(mmap)
                == "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f000000")
    }

    @Test func recordsParseFromTheSharedLayout() {
        // A record as the BPF program writes it: header plus the small data of a write.
        var event = clab_syscall_small_event()
        event.ev.kind = UInt16(CLAB_EV_SYSCALL.rawValue)
        event.ev.flags = UInt16(CLAB_F_SMALL.rawValue)
        event.ev.nr = 1
        event.ev.pid = 10
        event.ev.tid = 11
        event.ev.ret = 2
        event.ev.args = (1, 0x1000, 2, 0, 0, 0)
        event.d.len = 2
        event.d.data.0 = 0x6F
        event.d.data.1 = 0x6B
        let call = withUnsafeBytes(of: event) { raw -> Syscall? in
            guard let base = raw.baseAddress else { return nil }
            if case .syscall(let call) = RecordParser.parse(base, raw.count) { return call }
            return nil
        }
        #expect(call?.pid == 10 && call?.tid == 11)
        #expect(call.map { Decoder.line($0) } == #"write(1, "ok", 2) = 2"#)
    }

    @Test func theEmbeddedObjectIsAnELF() {
        #expect(EmbeddedObject.bytes.prefix(4) == [0x7F, 0x45, 0x4C, 0x46])
        #expect(EmbeddedObject.decodeBase64(Array("aGk=".utf8)) == Array("hi".utf8))
    }

    @Test func captureSpecsMatchTheSlots() {
        // openat: the path (argument 1) in slot 0.
        #expect(SyscallCatalog.entry(257)?.spec == 2)
        // execve: path in slot 0, argv packed from slot 1, both read at entry.
        #expect(SyscallCatalog.entry(59)?.spec == (1 | 0x80) | UInt32(2 | 0x40) << 8)
        // write: the buffer (argument 1), its length in argument 2: a small record.
        #expect(SyscallCatalog.entry(1)?.spec == UInt32(2 | 3 << 3))
        #expect(SyscallCatalog.entry(39)?.spec == 0)  // getpid: nothing to read
    }

    @Test func bufferSizes() throws {
        #expect(try TraceRunCommand.parseSize("8M") == 8 << 20)
        #expect(try TraceRunCommand.parseSize("512k") == 512 << 10)
        #expect(try TraceRunCommand.parseSize("16MiB") == 16 << 20)
        #expect(throws: (any Error).self) { try TraceRunCommand.parseSize("lots") }
        #expect(TraceProgram.ringSize(5_000_000) == 8 << 20)
    }

    @Test func summaryTableLooksLikeStraceC() {
        let text = SummaryTable.render([
            "read": SyscallStat(count: 4, errors: 0, nanoseconds: 3000),
            "openat": SyscallStat(count: 2, errors: 1, nanoseconds: 1000),
        ])
        let lines = text.split(separator: "\n")
        #expect(lines.first == "% time     seconds  usecs/call     calls    errors syscall")
        #expect(lines[2].hasSuffix(" read") && lines[2].hasPrefix(" 75.00"))
        #expect(lines.last?.hasSuffix("         6         1 total") == true)
    }
}
