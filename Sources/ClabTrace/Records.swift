import CLibBPF

/// One syscall as the kernel side reported it: numbers, plus the strings it was asked to read
/// (see `SyscallCatalog`). A value type with no heap storage unless strings were captured.
public struct Syscall: Sendable, Equatable {
    public var nr: Int32
    public var pid: UInt32
    public var tid: UInt32
    /// Entry time, CLOCK_MONOTONIC nanoseconds.
    public var ts: UInt64
    /// Entry to return, nanoseconds.
    public var duration: UInt64
    public var ret: Int64
    public var args: SIMD8<UInt64>
    /// String slots (clab_strings.data): nil where nothing was captured.
    public var strings: [[UInt8]?]
    /// A small record's one buffer (write's data), kept inline: no allocation per event.
    var small = SmallBytes()
    /// sendto/recvfrom/sendmsg/recvmsg on a netlink socket: the messages (nil otherwise).
    public var netlink: NetlinkCapture?
    /// execve's argv, when captured.
    public var argv: [[UInt8]]
    public var argvTruncated: Bool
    /// exit/exit_group: reported at entry, never returns.
    public var noReturn: Bool
    /// The thread died inside the syscall.
    public var unfinished: Bool
    /// A 32-bit call (int $0x80): `nr` is from the i386 table.
    public var compat = false
    /// An x32 call (the syscall instruction with __X32_SYSCALL_BIT): `nr` is x32's number
    /// without the bit (below 512 most are x86_64's; see `SyscallTableX32.swift`).
    public var x32 = false
    /// execve's argv could not be read (not paged in): shown as its address, never as `[]`.
    public var argvUnreadable = false
    /// What a few calls carry in records of their own (fds made, iovecs, a large struct): one
    /// reference, nil for every other call, so the hot path copies no more than before.
    private var extras: Extras?

    /// pipe, pipe2, socketpair, socket, accept, accept4: what the fds it made are (empty: not
    /// known, or another call).
    public var madeFDs: [MadeFD] {
        get { extras?.madeFDs ?? [] }
        set { extras = Extras(madeFDs: newValue, iov: extras?.iov, blob: extras?.blob) }
    }
    /// readv/writev's iovecs, sendmsg/recvmsg's msghdr (nil: not read, or another call).
    public var iov: IOVCapture? {
        get { extras?.iov }
        set { extras = Extras(madeFDs: extras?.madeFDs ?? [], iov: newValue, blob: extras?.blob) }
    }
    /// uname's, sysinfo's or statx's struct, read at its return (nil: not read, or another call).
    public var blob: [UInt8]? {
        get { extras?.blob }
        set { extras = Extras(madeFDs: extras?.madeFDs ?? [], iov: extras?.iov, blob: newValue) }
    }

    /// Immutable: a copy of the call shares it, a change replaces it.
    final class Extras: Sendable, Equatable {
        let madeFDs: [MadeFD]
        let iov: IOVCapture?
        let blob: [UInt8]?

        init(madeFDs: [MadeFD], iov: IOVCapture?, blob: [UInt8]?) {
            self.madeFDs = madeFDs
            self.iov = iov
            self.blob = blob
        }

        static func == (a: Extras, b: Extras) -> Bool { a.madeFDs == b.madeFDs && a.iov == b.iov && a.blob == b.blob }
    }

    public init(
        nr: Int32, pid: UInt32 = 1, tid: UInt32 = 1, ts: UInt64 = 0, duration: UInt64 = 0, ret: Int64 = 0,
        args: [UInt64] = [], strings: [[UInt8]?] = [], argv: [[UInt8]] = [], argvTruncated: Bool = false,
        noReturn: Bool = false, unfinished: Bool = false, netlink: NetlinkCapture? = nil
    ) {
        self.nr = nr
        self.pid = pid
        self.tid = tid
        self.ts = ts
        self.duration = duration
        self.ret = ret
        var a = SIMD8<UInt64>()
        for (i, v) in args.prefix(6).enumerated() { a[i] = v }
        self.args = a
        self.strings = strings
        self.argv = argv
        self.argvTruncated = argvTruncated
        self.noReturn = noReturn
        self.unfinished = unfinished
        self.netlink = netlink
    }

    /// strace -y's name of fd `fd` made by this call (`pipe:[4242]`), when the kernel side said.
    public func madeName(_ fd: Int64) -> String? { madeFDs.first { $0.fd == fd }?.name }

    public var name: String {
        if compat { return SyscallCatalog.name32(Int(nr)) }
        return x32 ? SyscallCatalog.nameX32(Int(nr)) : SyscallCatalog.name(Int(nr))
    }

    /// The ABI a call was made in, as strace names a process's mode.
    public enum ABI: Sendable, Equatable {
        case x86_64, i386, x32
    }

    public var abi: ABI { compat ? .i386 : x32 ? .x32 : .x86_64 }

    /// `nr` means what it means in the x86_64 table (the fd table, the stages and the extra
    /// records go by those numbers): an x86_64 call, or an x32 one x32 shares with x86_64.
    public var sharesX86_64: Bool { !compat && (!x32 || SyscallCatalog.x32Shares(Int(nr))) }

    /// The errno of a failed call (the kernel returns -errno in -4095...-1).
    public var errno: Int32? { ret < 0 && ret >= -4095 ? Int32(-ret) : nil }

    /// Slot `slot`'s bytes as an array (nil: not captured).
    func string(_ slot: Int) -> [UInt8]? {
        if slot == 0 && small.count >= 0 { return withSlot(0) { $0.map { Array($0) } } }
        return slot < strings.count ? strings[slot] : nil
    }

    /// A slot's whole text from a long-string record (slot 1 of execve: its whole argv). Only
    /// when it continues what the slot holds: a record whose call was lost (ring buffer full)
    /// is never shown as another call's.
    mutating func replace(slot: Int, with bytes: [UInt8]) {
        let name = self.name
        if slot == 1 && (name == "execve" || name == "execveat") {
            guard let first = argv.first, bytes.starts(with: first) else { return }
            var items = bytes.split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
            if items.last?.isEmpty == true { items.removeLast() }
            argv = items
            argvTruncated = bytes.count >= Int(CLAB_LONGSTR_MAX)
            return
        }
        guard let held = string(slot), held.count == Int(CLAB_STR_MAX), bytes.starts(with: held.dropLast()) else {
            return
        }
        if slot == 0 { small.count = -1 }
        while strings.count <= slot { strings.append(nil) }
        // A whole string of exactly a slot's size gets a second NUL: it is not a cut slot.
        strings[slot] = bytes.count == Int(CLAB_STR_MAX) ? bytes + [0] : bytes
    }

    /// The fds record the kernel side wrote just before this call's, kept only when it is this
    /// call's: one of the calls that make fds (x86_64 numbers), with the fd it returned or the
    /// pair it wrote. A record whose call was lost is never shown as another call's.
    mutating func attach(_ fds: [MadeFD]) {
        guard sharesX86_64, errno == nil, let first = fds.first else { return }
        switch nr {
        case 41, 43, 288:  // socket, accept, accept4
            guard fds.count == 1, first.fd == ret else { return }
        case 22, 293, 53:  // pipe, pipe2, socketpair
            guard fds.count == 2, ret == 0 else { return }
            if let pair = string(0), pair.count >= 8 {  // the pair's record: the one string slot
                let a = pair.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: Int32.self) }
                let b = pair.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
                guard Int64(a) == fds[0].fd && Int64(b) == fds[1].fd else { return }
            }
        default:
            return
        }
        madeFDs = fds
    }

    /// The iovec record written just before this call's, kept only when it is this call's.
    mutating func attach(_ capture: IOVCapture) {
        guard sharesX86_64, capture.nr == nr else { return }
        iov = capture
    }

    /// The struct record written just before this call's, kept only when it is this call's.
    mutating func attach(blob bytes: [UInt8], nr: Int32) {
        guard sharesX86_64, nr == self.nr, ret == 0 else { return }
        blob = bytes
    }

    /// Slot `slot`'s bytes, without copying them.
    func withSlot<R>(_ slot: Int, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        if slot == 0 && small.count >= 0 {
            return withUnsafeBytes(of: small.data) {
                body(UnsafeRawBufferPointer(rebasing: $0.prefix(Int(small.count))))
            }
        }
        guard slot < strings.count, let bytes = strings[slot] else { return body(nil) }
        return bytes.withUnsafeBytes { body($0) }
    }
}

/// An fd a call made, as the fd table had it at the call's return (struct clab_fds_event).
public struct MadeFD: Sendable, Equatable {
    public var fd: Int64
    /// The inode's i_mode: S_IFIFO, S_IFSOCK (0: not read).
    public var mode: UInt32
    public var inode: UInt64

    public init(fd: Int64, mode: UInt32, inode: UInt64) {
        self.fd = fd
        self.mode = mode
        self.inode = inode
    }

    /// As strace -y names it: `pipe:[4242]`, `socket:[4243]`; nil for any other kind of file.
    public var name: String? {
        switch mode & 0o170000 {
        case 0o010000: return "pipe:[\(inode)]"
        case 0o140000: return "socket:[\(inode)]"
        default: return nil
        }
    }
}

/// What the kernel side read of an iovec array (struct clab_iov_event).
public struct IOVCapture: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var base: UInt64
        public var length: UInt64
        /// The first bytes of the buffer (of what a read filled), at most CLAB_IOV_DATA.
        public var data: [UInt8]

        public init(base: UInt64, length: UInt64, data: [UInt8]) {
            self.base = base
            self.length = length
            self.data = data
        }
    }

    public var nr: Int32
    /// The call's iovcnt (msg_iovlen): more than `entries` when not all were read.
    public var iovlen: UInt64
    public var entries: [Entry]
    /// sendmsg/recvmsg: the struct user_msghdr (56 bytes), nil when it could not be read.
    public var msghdr: [UInt8]?
    /// msg_name's bytes.
    public var name: [UInt8]
    /// sendmsg/recvmsg's control messages (nil: none, or not read).
    public var control: ControlCapture?

    public init(
        nr: Int32, iovlen: UInt64, entries: [Entry], msghdr: [UInt8]? = nil, name: [UInt8] = [],
        control: ControlCapture? = nil
    ) {
        self.nr = nr
        self.iovlen = iovlen
        self.entries = entries
        self.msghdr = msghdr
        self.name = name
        self.control = control
    }
}

/// What the kernel side read of a msg_control buffer (struct clab_cmsg_event).
public struct ControlCapture: Sendable, Equatable {
    public var nr: Int32
    /// The first bytes of the buffer (CLAB_CMSG_MAX at most).
    public var bytes: [UInt8]
    /// msg_controllen: more than `bytes` when not all was read.
    public var length: UInt64
    /// The first message's fds (SCM_RIGHTS), as the caller's fd table had them at the return.
    public var fds: [MadeFD]
    /// strace -y's names of those fds where the reader knows them (a received file by the path
    /// the sender's fd had), filled in by the session.
    public var names: [Int64: String] = [:]

    public init(nr: Int32, bytes: [UInt8], length: UInt64, fds: [MadeFD] = []) {
        self.nr = nr
        self.bytes = bytes
        self.length = length
        self.fds = fds
    }
}

/// What the kernel side read of a netlink send or receive (struct clab_netlink_data).
public struct NetlinkCapture: Sendable, Equatable {
    /// The socket's protocol: NETLINK_ROUTE (0), NETLINK_NETFILTER (12), ...
    public var proto: UInt16
    /// The start of the buffer (of the first iovec for sendmsg/recvmsg).
    public var bytes: [UInt8]
    /// The buffer's length: sendto/recvfrom's len, the first iovec's iov_len.
    public var bufferLength: UInt64
    /// The buffer's address.
    public var base: UInt64
    /// sendmsg/recvmsg: how many iovecs the message had.
    public var iovlen: UInt64
    /// sendto's dest_addr or sendmsg's msg_name, when given.
    public var address: [UInt8]

    public init(
        proto: UInt16, bytes: [UInt8], bufferLength: UInt64? = nil, base: UInt64 = 0x1000, iovlen: UInt64 = 1,
        address: [UInt8] = []
    ) {
        self.proto = proto
        self.bytes = bytes
        self.bufferLength = bufferLength ?? UInt64(bytes.count)
        self.base = base
        self.iovlen = iovlen
        self.address = address
    }
}

/// A signal delivered to a traced thread (signal:signal_deliver): strace's `--- SIGCHLD {...} ---`.
public struct SignalDelivery: Sendable, Equatable {
    public var ts: UInt64
    public var pid: UInt32
    public var tid: UInt32
    public var signal: Int32
    /// The kernel's siginfo (the first 48 bytes of a siginfo_t); zeros when there was none.
    public var info: [UInt8]
    /// The kernel discarded it as ignored (SIGCHLD at SIG_DFL): never delivered, shown where
    /// strace, whose ptrace makes the kernel queue it, shows it.
    public var ignored: Bool
    /// A fatal signal without a handler, which ended the process at once (no delivery): shown
    /// before the end, where strace shows it.
    public var fatal: Bool

    public init(
        ts: UInt64 = 0, pid: UInt32, tid: UInt32, signal: Int32, info: [UInt8], ignored: Bool = false,
        fatal: Bool = false
    ) {
        self.ts = ts
        self.pid = pid
        self.tid = tid
        self.signal = signal
        self.info = info
        self.ignored = ignored
        self.fatal = fatal
    }
}

/// Up to CLAB_SMALL_MAX (64) bytes inline; count -1: none.
struct SmallBytes: Sendable, Equatable {
    var count: Int16 = -1
    var data: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

    static func == (a: SmallBytes, b: SmallBytes) -> Bool {
        a.count == b.count
            && withUnsafeBytes(of: a.data) { x in withUnsafeBytes(of: b.data) { y in x.elementsEqual(y) } }
    }
}

/// A traced process started, executed a program, or ended.
public enum ProcessEvent: Sendable, Equatable {
    /// `childPid`/`childTid` as the host sees them; `childNsPid` in the child's own pid namespace.
    case fork(
        ts: UInt64, pid: UInt32, tid: UInt32, childPid: UInt32, childTid: UInt32, childNsPid: UInt32,
        nsLevel: UInt32, thread: Bool, comm: String)
    case exec(ts: UInt64, pid: UInt32, oldTid: UInt32, nsPid: UInt32, nsLevel: UInt32, comm: String)
    case exit(ts: UInt64, pid: UInt32, status: Int32, comm: String)
    /// The OOM killer chose this process (oom:mark_victim): a memory limit struck.
    case oom(ts: UInt64, pid: UInt32, nsPid: UInt32, comm: String)
    /// A task moved into a cgroup (cgroup:cgroup_attach_task); `path` within hierarchy `hierarchy`.
    case cgroup(ts: UInt64, pid: UInt32, tid: UInt32, hierarchy: UInt32, path: String)
}

/// Parses ring-buffer records (layouts in Sources/CLibBPF/clab_trace_events.h).
enum RecordParser {
    enum Record {
        case syscall(Syscall)
        case process(ProcessEvent)
        /// Records the ring buffer had no room for, just before this point (times: the first
        /// and last drop).
        case lost(count: UInt64, firstTs: UInt64, lastTs: UInt64)
        /// A string slot's whole text, for the next syscall record of thread `tid`.
        case longString(tid: UInt32, slot: Int, bytes: [UInt8])
        case signal(SignalDelivery)
        /// The fds the next syscall record of thread `tid` made.
        case fds(tid: UInt32, [MadeFD])
        /// The iovecs (and msghdr) of the next syscall record of thread `tid`.
        case iov(tid: UInt32, IOVCapture)
        /// The struct the next syscall record of thread `tid` (number `nr`) filled.
        case blob(tid: UInt32, nr: Int32, [UInt8])
        /// The control messages of the next syscall record of thread `tid` (after its iovecs).
        case cmsg(tid: UInt32, ControlCapture)
        /// A thread other than a process's last one ended (wait status `status`).
        case threadExit(pid: UInt32, tid: UInt32, status: Int32)
        /// A marker (a StageMark's value) of thread `tid`: the stage its next calls are the work of.
        case mark(pid: UInt32, tid: UInt32, mark: Int32)
        case unknown
    }

    static var eventSize: Int { MemoryLayout<clab_syscall_event>.size }
    static var stringsOffset: Int { MemoryLayout<clab_syscall_strings_event>.offset(of: \.s) ?? eventSize }
    static var stringsDataOffset: Int { MemoryLayout<clab_strings>.offset(of: \.data) ?? 16 }
    static var stringsSize: Int { MemoryLayout<clab_syscall_strings_event>.size }
    static var procSize: Int { MemoryLayout<clab_proc_event>.size }
    static var smallOffset: Int { MemoryLayout<clab_syscall_small_event>.offset(of: \.d) ?? eventSize }
    static var smallDataOffset: Int { MemoryLayout<clab_small_data>.offset(of: \.data) ?? 8 }
    static var smallSize: Int { MemoryLayout<clab_syscall_small_event>.size }
    static var netlinkOffset: Int { MemoryLayout<clab_syscall_netlink_event>.offset(of: \.nl) ?? eventSize }
    static var netlinkSize: Int { MemoryLayout<clab_syscall_netlink_event>.size }

    static func parse(_ base: UnsafeRawPointer, _ size: Int) -> Record {
        guard size >= 4 else { return .unknown }
        let kind = base.loadUnaligned(as: UInt16.self)
        switch Int32(kind) {
        case Int32(CLAB_EV_SYSCALL.rawValue) where size >= eventSize:
            return .syscall(syscall(base, size))
        case Int32(CLAB_EV_FORK.rawValue), Int32(CLAB_EV_EXEC.rawValue), Int32(CLAB_EV_EXIT.rawValue),
            Int32(CLAB_EV_OOM.rawValue):
            guard size >= procSize else { return .unknown }
            let e = base.loadUnaligned(as: clab_proc_event.self)
            if Int32(kind) == Int32(CLAB_EV_EXIT.rawValue) && UInt32(e.flags) & CLAB_F_THREAD.rawValue != 0 {
                return .threadExit(pid: e.pid, tid: e.tid, status: e.exit_code)
            }
            return .process(process(e))
        case Int32(CLAB_EV_LONGSTR.rawValue):
            let header = MemoryLayout<clab_longstr_event>.offset(of: \.data) ?? 16
            guard size >= header else { return .unknown }
            let e = base.loadUnaligned(as: (UInt16, UInt16, UInt32, UInt32).self)
            let len = min(Int(e.3), size - header, Int(CLAB_LONGSTR_MAX))
            return .longString(
                tid: e.2, slot: Int(e.1), bytes: Array(UnsafeRawBufferPointer(start: base + header, count: len)))
        case Int32(CLAB_EV_SIGNAL.rawValue):
            guard size >= MemoryLayout<clab_signal_event>.size else { return .unknown }
            let e = base.loadUnaligned(as: clab_signal_event.self)
            return .signal(
                SignalDelivery(
                    ts: e.ts, pid: e.pid, tid: e.tid, signal: e.sig, info: withUnsafeBytes(of: e.info) { Array($0) },
                    ignored: UInt32(e.flags) & UInt32(CLAB_SIG_IGNORED) != 0,
                    fatal: UInt32(e.flags) & UInt32(CLAB_SIG_FATAL) != 0))
        case Int32(CLAB_EV_CGROUP.rawValue):
            guard size >= MemoryLayout<clab_cgroup_event>.size else { return .unknown }
            let e = base.loadUnaligned(as: clab_cgroup_event.self)
            let path = withUnsafeBytes(of: e.path) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return .process(.cgroup(ts: e.ts, pid: e.pid, tid: e.tid, hierarchy: e.hierarchy, path: path))
        case Int32(CLAB_EV_FDS.rawValue):
            guard size >= MemoryLayout<clab_fds_event>.size else { return .unknown }
            let e = base.loadUnaligned(as: clab_fds_event.self)
            let fds = [(e.fd.0, e.mode.0, e.ino.0), (e.fd.1, e.mode.1, e.ino.1)].prefix(min(Int(e.count), 2))
            return .fds(tid: e.tid, fds.map { MadeFD(fd: Int64($0.0), mode: $0.1, inode: $0.2) })
        case Int32(CLAB_EV_IOV.rawValue):
            guard size >= MemoryLayout<clab_iov_event>.size else { return .unknown }
            return iov(base)
        case Int32(CLAB_EV_BLOB.rawValue):
            guard size >= MemoryLayout<clab_blob_event>.size else { return .unknown }
            let e = base.loadUnaligned(as: clab_blob_event.self)
            let bytes = withUnsafeBytes(of: e.data) { Array($0.prefix(min(Int(e.len), Int(CLAB_BLOB_MAX)))) }
            return .blob(tid: e.tid, nr: e.nr, bytes)
        case Int32(CLAB_EV_CMSG.rawValue):
            guard size >= MemoryLayout<clab_cmsg_event>.size else { return .unknown }
            let e = base.loadUnaligned(as: clab_cmsg_event.self)
            let bytes = withUnsafeBytes(of: e.data) { Array($0.prefix(min(Int(e.len), Int(CLAB_CMSG_MAX)))) }
            let modes = withUnsafeBytes(of: e.mode) { Array($0.bindMemory(to: UInt32.self)) }
            let inodes = withUnsafeBytes(of: e.ino) { Array($0.bindMemory(to: UInt64.self)) }
            let fds = (0..<min(Int(e.nfds), Int(CLAB_CMSG_FDS))).map { i in
                MadeFD(fd: Int64(Decoder.i32(bytes, 16 + i * 4)), mode: modes[i], inode: inodes[i])
            }
            return .cmsg(tid: e.tid, ControlCapture(nr: e.nr, bytes: bytes, length: e.controllen, fds: fds))
        case Int32(CLAB_EV_MARK.rawValue):
            guard size >= MemoryLayout<clab_mark_event>.size else { return .unknown }
            let e = base.loadUnaligned(as: clab_mark_event.self)
            return .mark(pid: e.pid, tid: e.tid, mark: e.mark)
        case Int32(CLAB_EV_LOST.rawValue):
            guard size >= MemoryLayout<clab_lost_event>.size else { return .unknown }
            let e = base.loadUnaligned(as: clab_lost_event.self)
            return .lost(count: e.count, firstTs: e.first_ts, lastTs: e.last_ts)
        default:
            return .unknown
        }
    }

    static func syscall(_ base: UnsafeRawPointer, _ size: Int) -> Syscall {
        let e = base.loadUnaligned(as: clab_syscall_event.self)
        var call = Syscall(nr: e.nr)
        call.pid = e.pid
        call.tid = e.tid
        call.ts = e.ts
        call.duration = e.dur
        call.ret = e.ret
        call.args = SIMD8(e.args.0, e.args.1, e.args.2, e.args.3, e.args.4, e.args.5, 0, 0)
        let flags = UInt32(e.flags)
        call.noReturn = flags & CLAB_F_NORETURN.rawValue != 0
        call.unfinished = flags & CLAB_F_UNFINISHED.rawValue != 0
        call.argvTruncated = flags & CLAB_F_ARGV_MORE.rawValue != 0
        call.compat = flags & CLAB_F_COMPAT.rawValue != 0
        call.x32 = flags & CLAB_F_X32.rawValue != 0
        call.argvUnreadable = flags & CLAB_F_ARGV_FAULT.rawValue != 0
        if flags & CLAB_F_NETLINK.rawValue != 0 && size >= netlinkSize {
            call.netlink = netlink(base + netlinkOffset)
        } else if flags & CLAB_F_SMALL.rawValue != 0 && size >= smallSize {
            let d = base + smallOffset
            let len = min(Int(d.loadUnaligned(as: UInt16.self)), Int(CLAB_SMALL_MAX))
            call.small.count = Int16(len)
            withUnsafeMutableBytes(of: &call.small.data) { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(start: d + smallDataOffset, count: len))
            }
        } else if flags & CLAB_F_STRINGS.rawValue != 0 && size >= stringsSize {
            let s = base + stringsOffset
            let data = s + stringsDataOffset
            let slotSize = Int(CLAB_STR_MAX)
            var strings: [[UInt8]?] = []
            for slot in 0..<Int(CLAB_STR_SLOTS) {
                let len = Int(s.loadUnaligned(fromByteOffset: slot * 2, as: UInt16.self))
                if len == 0 {
                    strings.append(nil)
                } else {
                    let bytes = UnsafeRawBufferPointer(start: data + slot * slotSize, count: min(len, slotSize))
                    strings.append(Array(bytes))
                }
            }
            call.strings = strings
            let argc = Int(s.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
            let argvLen = Int(s.loadUnaligned(fromByteOffset: 10, as: UInt16.self))
            if argc > 0 {
                let bytes = UnsafeRawBufferPointer(
                    start: data + slotSize, count: min(argvLen, Int(CLAB_DATA_MAX) - slotSize))
                call.argv = bytes.split(separator: 0, omittingEmptySubsequences: false).prefix(argc).map(Array.init)
            }
        }
        return call
    }

    static func iov(_ base: UnsafeRawPointer) -> Record {
        let e = base.loadUnaligned(as: clab_iov_event.self)
        let count = min(Int(e.count), Int(CLAB_IOV_MAX))
        let bases = withUnsafeBytes(of: e.base) { Array($0.bindMemory(to: UInt64.self)) }
        let lengths = withUnsafeBytes(of: e.len) { Array($0.bindMemory(to: UInt64.self)) }
        let got = withUnsafeBytes(of: e.got) { Array($0.bindMemory(to: UInt16.self)) }
        let entries = withUnsafeBytes(of: e.data) { data in
            (0..<count).map { i in
                let n = min(Int(got[i]), Int(CLAB_IOV_DATA))
                let start = i * Int(CLAB_IOV_DATA)
                return IOVCapture.Entry(base: bases[i], length: lengths[i], data: Array(data[start..<start + n]))
            }
        }
        let msghdr = e.flags & 1 != 0 ? withUnsafeBytes(of: e.msghdr) { Array($0) } : nil
        let name = withUnsafeBytes(of: e.name) { Array($0.prefix(min(Int(e.name_len), $0.count))) }
        return .iov(
            tid: e.tid, IOVCapture(nr: e.nr, iovlen: e.iovlen, entries: entries, msghdr: msghdr, name: name))
    }

    static func netlink(_ base: UnsafeRawPointer) -> NetlinkCapture {
        let nl = base.loadUnaligned(as: clab_netlink_data.self)
        let dataOffset = MemoryLayout<clab_netlink_data>.offset(of: \.data) ?? 48
        let bytes = Array(UnsafeRawBufferPointer(start: base + dataOffset, count: min(Int(nl.len), Int(CLAB_NL_MAX))))
        let address = withUnsafeBytes(of: nl.addr) { Array($0.prefix(min(Int(nl.addr_len), $0.count))) }
        return NetlinkCapture(
            proto: nl.protocol, bytes: bytes, bufferLength: UInt64(nl.buf_len), base: nl.base, iovlen: nl.iovlen,
            address: address)
    }

    static func process(_ e: clab_proc_event) -> ProcessEvent {
        let comm = withUnsafeBytes(of: e.comm) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch Int32(e.kind) {
        case Int32(CLAB_EV_FORK.rawValue):
            return .fork(
                ts: e.ts, pid: e.pid, tid: e.tid, childPid: e.child_pid, childTid: e.child_tid,
                childNsPid: e.ns_pid, nsLevel: e.ns_level, thread: UInt32(e.flags) & CLAB_F_THREAD.rawValue != 0,
                comm: comm)
        case Int32(CLAB_EV_EXEC.rawValue):
            return .exec(ts: e.ts, pid: e.pid, oldTid: e.child_pid, nsPid: e.ns_pid, nsLevel: e.ns_level, comm: comm)
        case Int32(CLAB_EV_OOM.rawValue):
            return .oom(ts: e.ts, pid: e.pid, nsPid: e.ns_pid, comm: comm)
        default:
            return .exit(ts: e.ts, pid: e.pid, status: e.exit_code, comm: comm)
        }
    }
}
