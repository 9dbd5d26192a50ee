import CLibBPF

/// How to show one syscall argument.
enum ArgKind: Sendable {
    /// A C int (32 bits, signed: -1 stays -1).
    case int
    /// long, off_t, loff_t (64 bits, signed).
    case long
    /// unsigned long, size_t.
    case uint
    /// unsigned int, uid_t (32 bits).
    case uint32
    case hex
    /// A file descriptor, with the path it was opened from where known: `3</etc/hostname>`.
    case fd
    /// A directory fd of the *at() calls: AT_FDCWD or an fd.
    case dirfd
    case octal
    /// The mode of open/openat, shown only when the flags (argument `flagsArg`) create a file.
    case modeIf(flagsArg: Int)
    /// Named constants or flags.
    case named(@Sendable (UInt64) -> String)
    /// Depends on other arguments (prctl's second argument is a signal for PR_SET_PDEATHSIG);
    /// nil: not shown (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN) has no more, as strace prints it).
    case custom(@Sendable (Syscall) -> String?)
    // Captured by the kernel side (each takes the next string slot, in argument order):
    /// A NUL-terminated user string: "/etc/hostname".
    case string
    /// A user buffer whose length is argument `lenArg` (or the return value when nil).
    case buffer(lenArg: Int?)
    /// execve's argv: ["ls", "/"].
    case argv
    /// clone3's struct clone_args (length: argument 1).
    case cloneArgs
    /// A struct sockaddr whose length is argument `lenArg`.
    case sockaddr(lenArg: Int)
    /// A fixed-size struct of `words` * 8 bytes (at most 7), shown by `render` from its bytes;
    /// `output`: the kernel fills it, so it is shown only when the call succeeded.
    case record(words: Int, output: Bool, render: @Sendable ([UInt8], Syscall) -> String)
    /// A `record` whose fields hold fds, named as the other fd arguments are (poll's pollfds).
    case fdRecord(words: Int, output: Bool, render: @Sendable ([UInt8], Syscall, (Int64) -> String?) -> String)
    // Read by the kernel side when the fd is a netlink socket (a record of their own):
    /// sendto/recvfrom's buffer: the netlink messages in it, or else shown as `otherwise`.
    indirect case netlink(otherwise: ArgKind)
    /// sendmsg/recvmsg's struct msghdr: its first iovec's netlink messages, or else the whole
    /// msghdr from the iovec record (`output`: recvmsg, shown only when it succeeded).
    case msghdr(output: Bool)
    /// readv/writev's iovec array (the kernel side reads it by syscall number); `output`: the
    /// call fills the buffers (shown only when it succeeded).
    case iovec(output: Bool)
    /// A struct the call fills, larger than a capture slot (uname, sysinfo, statx): read by the
    /// kernel side by syscall number, shown by `render` when the call succeeded.
    case blob(render: @Sendable ([UInt8]) -> String)
    /// `then` for the calls `when` picks (prctl's PR_SET_NAME: a string), `otherwise` for the
    /// rest; the kernel side captures for `then`.
    indirect case either(when: @Sendable (Syscall) -> Bool, then: ArgKind, otherwise: ArgKind)

    /// Shown from memory the call points to (read by the kernel side with x86_64's layouts).
    var readsMemory: Bool {
        switch self {
        case .string, .buffer, .argv, .cloneArgs, .sockaddr, .record, .fdRecord, .netlink, .msghdr, .iovec, .blob,
            .either:
            return true
        default: return false
        }
    }

    /// What the kernel side captures for any socket.
    var plain: ArgKind {
        if case .netlink(let otherwise) = self { return otherwise }
        if case .either(_, let then, _) = self { return then.plain }
        return self
    }

    /// Filled by the kernel (read's buffer, an output struct): not known while the call runs.
    var isOutput: Bool {
        switch plain {
        case .buffer(let lenArg): return lenArg == nil
        case .record(_, let output, _), .fdRecord(_, let output, _), .iovec(let output), .msghdr(let output):
            return output
        case .blob: return true
        default: return false
        }
    }

    var captures: Bool {
        switch plain {
        case .string, .buffer, .argv, .cloneArgs, .sockaddr, .record, .fdRecord: return true
        default: return false
        }
    }
}

/// Every syscall clab can name, how to show its arguments, and what the kernel side must read
/// for it. Names come from the generated `SyscallTable` (bpf/gen-syscalls.sh); the decoding of
/// the calls a container lesson is about is spelled out here.
enum SyscallCatalog {
    final class Entry: Sendable {
        let name: String
        let kinds: [ArgKind]
        /// Which string slot each argument uses (nil: none).
        let slots: [Int?]
        /// The `capture` map value (see clab_trace_events.h); 0: nothing to read.
        let spec: UInt32
        /// The return value is an address (mmap, brk): shown in hex.
        let returnsAddress: Bool
        /// A successful return shown otherwise than in decimal (umask's `022`, fcntl(F_GETFL)'s
        /// `0x8000 (flags O_RDONLY|O_LARGEFILE)`); nil from it: decimal.
        let result: (@Sendable (Syscall) -> String?)?
        /// `,"syscall":"NAME","nr":N` for the JSON writer, made once.
        let jsonName: [UInt8]

        init(
            name: String, nr: Int, kinds: [ArgKind], slots: [Int?], spec: UInt32, returnsAddress: Bool,
            abi: String? = nil, result: (@Sendable (Syscall) -> String?)? = nil
        ) {
            self.result = result
            self.name = name
            self.kinds = kinds
            self.slots = slots
            self.spec = spec
            self.returnsAddress = returnsAddress
            jsonName = Array(
                (",\"syscall\":\"\(name)\",\"nr\":\(nr)" + (abi.map { ",\"abi\":\"\($0)\"" } ?? "")).utf8)
        }
    }

    static func name(_ nr: Int) -> String { entry(nr)?.name ?? "syscall_\(nr)" }

    static func entry(_ nr: Int) -> Entry? { nr >= 0 && nr < table.count ? table[nr] : nil }

    /// The entry a record is decoded with: a 32-bit call's from the i386 table, an x32 call's
    /// from x32's.
    static func entry(for call: Syscall) -> Entry? {
        if call.compat { return compat[Int(call.nr)] }
        return call.x32 ? x32[Int(call.nr)] : entry(Int(call.nr))
    }

    /// An x32 call's name; an unknown one as strace names it, with the bit (`syscall_0x40000258`).
    static func nameX32(_ nr: Int) -> String { x32[nr]?.name ?? "syscall_" + Flags.hex(UInt64(nr) | 0x4000_0000) }

    /// x32 call `nr` is x86_64's call of the same number (same handler, same layouts).
    static func x32Shares(_ nr: Int) -> Bool { nr < 512 && !SyscallTable.x32Excluded.contains(nr) && entry(nr) != nil }

    /// An argument as strace's printargs shows it: hex, 0 as `0`.
    static let printArg = ArgKind.named { $0 == 0 ? "0" : Flags.hex($0) }

    /// x32 calls. Below 512 x86_64's own entries (the kernel runs the 64-bit handler, with
    /// 64-bit layouts: the captures by number are right), except the "64"-only numbers, which
    /// fail with ENOSYS and are named and shown as strace shows them (`rt_sigaction#64(0x11, 0)`).
    /// x32's own calls (512-547) take 32-bit pointers and compat structs (iovecs, msghdrs,
    /// sigactions, argv arrays of 4-byte pointers), which no decoder here reads: their pointers
    /// are shown as the 32-bit addresses the kernel uses, the other arguments as x86_64's call
    /// of that name shows them. The kernel side has no capture spec or extra record for them.
    static let x32: [Int: Entry] = {
        var result: [Int: Entry] = [:]
        for nr in 0..<512 {
            guard let e = entry(nr) else { continue }
            if SyscallTable.x32Excluded.contains(nr) {
                let kinds = e.kinds.map { _ in printArg }
                result[nr] = Entry(
                    name: e.name + "#64", nr: nr, kinds: kinds, slots: kinds.map { _ in nil }, spec: 0,
                    returnsAddress: false, abi: "x32")
            } else {
                result[nr] = Entry(
                    name: e.name, nr: nr, kinds: e.kinds, slots: e.slots, spec: e.spec,
                    returnsAddress: e.returnsAddress, abi: "x32", result: e.result)
            }
        }
        let pointer32 = ArgKind.named { raw in raw & 0xFFFF_FFFF == 0 ? "NULL" : Flags.hex(raw & 0xFFFF_FFFF) }
        for (nr, name) in SyscallTable.x32Names {
            var kinds = (numbers[name].flatMap(entry)?.kinds ?? []).map { $0.readsMemory ? pointer32 : $0 }
            if name == "preadv2" || name == "pwritev2" {
                // x32's take the offset in one register: the flags are the fifth argument.
                kinds = [.fd, pointer32, .int, .long, .named { Flags.bits($0, Flags.rwf) }]
            }
            result[nr] = Entry(
                name: name, nr: nr, kinds: kinds, slots: kinds.map { _ in nil }, spec: 0, returnsAddress: false,
                abi: "x32")
        }
        return result
    }()

    static func name32(_ nr: Int) -> String { SyscallTable.i386Names[nr] ?? "syscall_\(nr)" }

    /// i386 calls: named by their own table, their arguments shown as the x86_64 call of the same
    /// name shows them, without strings (the kernel side captures by x86_64 number, so nothing is
    /// read: pointers stay pointers). Calls whose arguments differ between the two ABIs (a struct
    /// for several registers, 64-bit values split in two, another order) are shown as numbers.
    static let compat: [Int: Entry] = {
        let differ: Set<String> = [
            "mmap", "select", "clone", "socketcall", "ipc", "pread64", "pwrite64", "truncate64", "ftruncate64",
            "fadvise64", "fadvise64_64", "fallocate", "sync_file_range", "readahead", "_llseek", "lookup_dcookie",
        ]
        var result: [Int: Entry] = [:]
        for (nr, name) in SyscallTable.i386Names {
            let kinds: [ArgKind]
            if !differ.contains(name), let nr64 = numbers[name], let e64 = entry(nr64) {
                kinds = e64.kinds.map { $0.captures ? .hex : $0 }
            } else {
                kinds = [ArgKind](repeating: .hex, count: 6)
            }
            result[nr] = Entry(
                name: name, nr: nr, kinds: kinds, slots: kinds.map { _ in nil }, spec: 0,
                returnsAddress: name == "mmap2" || name == "brk", abi: "i386")
        }
        return result
    }()

    static func number(_ name: String) -> Int? { numbers[name] }

    /// The capture map's contents.
    static var captureSpecs: [Int: UInt32] {
        var specs: [Int: UInt32] = [:]
        for (nr, entry) in table.enumerated() { if let entry, entry.spec != 0 { specs[nr] = entry.spec } }
        return specs
    }

    static let numbers: [String: Int] = {
        var result: [String: Int] = [:]
        for (nr, entry) in SyscallTable.entries { result[entry.name] = nr }
        return result
    }()

    static let table: [Entry?] = {
        var table = [Entry?](repeating: nil, count: Int(CLAB_MAX_SYSCALLS))
        for (nr, entry) in SyscallTable.entries where nr < table.count {
            let kinds = overrides[entry.name] ?? entry.args.map(generic)
            table[nr] = make(entry.name, nr: nr, kinds)
        }
        return table
    }()

    static func make(_ name: String, nr: Int, _ kinds: [ArgKind]) -> Entry {
        var slots: [Int?] = []
        var spec: UInt32 = 0
        var next = 0
        let atEntry = atEntryCalls.contains(name)
        for (i, kind) in kinds.enumerated() {
            guard kind.captures, next < Int(CLAB_STR_SLOTS) else {
                slots.append(nil)
                continue
            }
            var byte = UInt32(i + 1)
            switch kind.plain {
            case .buffer(let lenArg): byte |= UInt32(lenArg.map { $0 + 1 } ?? 7) << 3
            case .cloneArgs: byte |= 2 << 3
            case .sockaddr(let lenArg): byte |= UInt32(lenArg + 1) << 3
            case .argv: byte |= UInt32(CLAB_CAP_ARGV)
            case .record(let words, _, _), .fdRecord(let words, _, _):
                byte |= UInt32(CLAB_CAP_ARGV) | UInt32(words & 7) << 3
            default: break
            }
            if case .argv = kind.plain { next = max(next, 1) }
            spec |= byte << (8 * UInt32(next))
            slots.append(next)
            next += 1
        }
        if atEntry && spec != 0 { spec |= UInt32(CLAB_CAP_AT_ENTRY) }
        return Entry(
            name: name, nr: nr, kinds: kinds, slots: slots, spec: spec,
            returnsAddress: ["mmap", "brk", "mremap", "shmat"].contains(name), result: results[name])
    }

    /// Return values strace decodes (the value, then what it means).
    static let results: [String: @Sendable (Syscall) -> String?] = [
        "poll": { Decoder.pollResult($0) },
        "ppoll": { Decoder.pollResult($0) },
        "umask": { "0" + String(UInt64(bitPattern: $0.ret), radix: 8) },
        "fcntl": { call in
            let ret = UInt64(bitPattern: call.ret)
            switch call.args[1] & 0xFFFF_FFFF {
            case 1: return ret == 0 ? nil : Flags.hex(ret) + " (flags " + Flags.bits(ret, [(1, "FD_CLOEXEC")]) + ")"
            case 3: return Flags.hex(ret) + " (flags " + Flags.open(ret) + ")"
            default: return nil
            }
        },
        "prctl": { call in
            guard call.args[0] == 3 else { return nil }  // PR_GET_DUMPABLE
            let names = ["SUID_DUMP_DISABLE", "SUID_DUMP_USER", "SUID_DUMP_ROOT"]
            return (0...2).contains(call.ret) ? "\(call.ret) (\(names[Int(call.ret)]))" : nil
        },
    ]

    /// execve's path and argv live in memory the call replaces: read them at entry.
    /// rt_sigreturn's mask is in the signal frame it unwinds (the kernel side points its first
    /// argument there).
    static let atEntryCalls: Set<String> = ["execve", "execveat", "rt_sigreturn"]

    /// From the kernel's declaration ("unsigned int fd", "const char *filename").
    static func generic(_ declaration: String) -> ArgKind {
        let parts = declaration.split(separator: " ")
        let name = parts.last.map { String($0.drop { $0 == "*" }) } ?? ""
        if declaration.contains("*") || name == "start" || name == "addr" { return .hex }
        if name == "dfd" || name == "olddfd" || name == "newdfd" { return .dirfd }
        if name == "fd" || name.hasPrefix("fd_") || name.hasSuffix("fd") && !name.hasPrefix("n") { return .fd }
        if name == "mode" && declaration.hasPrefix("umode_t") { return .octal }
        let type = parts.dropLast().joined(separator: " ")
        switch type {
        case "int", "pid_t", "clockid_t", "key_t", "mqd_t", "timer_t", "const int", "__s32": return .int
        case "unsigned int", "u32", "__u32", "uid_t", "gid_t", "qid_t", "old_uid_t", "old_gid_t", "rwf_t":
            return .uint32
        case "long", "off_t", "loff_t", "ssize_t", "__s64", "time_t": return .long
        default: return .uint
        }
    }

    static let clone = ArgKind.named { Flags.cloneFlags($0) }
    static let cloneNS = ArgKind.named { Flags.bits($0, Flags.cloneWithTime) }
    static let signal = ArgKind.named { Flags.signal($0) }
    static let at = ArgKind.named { Flags.bits($0, Flags.at) }
    static let msgFlags = ArgKind.named { Flags.bits($0, Flags.msg) }
    /// capset/capget: struct __user_cap_header_struct, then two __user_cap_data_struct (v2, v3).
    static let capHeader = ArgKind.record(words: 1, output: false) { bytes, _ in Decoder.capHeader(bytes) }
    static func caps(output: Bool) -> ArgKind { .record(words: 3, output: output) { Decoder.capData($0, $1) } }
    static let xattrFlags: Flags.Table = [(1, "XATTR_CREATE"), (2, "XATTR_REPLACE")]
    static let stat = ArgKind.record(words: 7, output: true) { b, _ in Decoder.stat(b) }
    static let fdPair = ArgKind.record(words: 1, output: true) { b, call in Decoder.fdPair(b, call) }
    static let clock = ArgKind.named { Flags.value($0, Flags.clocks) }
    static let epollEvents = ArgKind.record(words: 7, output: true) { b, call in
        Decoder.epollEvents(b, count: Int(call.ret), max: 4)
    }
    /// Up to 7 struct pollfd (56 bytes).
    static let pollFDs = ArgKind.fdRecord(words: 7, output: false) { b, call, fdPath in
        Decoder.pollFDs(b, count: Int(min(call.args[1], 7)), more: call.args[1] > 7, fdPath: fdPath)
    }
    static func timespec(output: Bool) -> ArgKind {
        .record(words: 2, output: output) { b, _ in Decoder.timespec(b) }
    }
    static func sigaction(output: Bool) -> ArgKind {
        .record(words: 4, output: output) { b, _ in Decoder.sigaction(b) }
    }
    static func sigset(output: Bool) -> ArgKind {
        .record(words: 1, output: output) { b, _ in Decoder.sigset(Decoder.u64(b, 0)) }
    }
    static let rlimitResource = ArgKind.named { Flags.value($0, Flags.rlimit, signed: false) }
    static func rlimit(output: Bool, _ infinity: String) -> ArgKind {
        .record(words: 2, output: output) { bytes, _ in Decoder.rlimit(bytes, infinity: infinity) }
    }

    /// The syscalls the lessons are about (and a few everywhere in traces), argument by argument.
    static let overrides: [String: [ArgKind]] = [
        // files
        "open": [.string, .named(Flags.open), .modeIf(flagsArg: 1)],
        "openat": [.dirfd, .string, .named(Flags.open), .modeIf(flagsArg: 2)],
        "openat2": [.dirfd, .string, .hex, .uint],
        "creat": [.string, .octal],
        "read": [.fd, .buffer(lenArg: nil), .uint],
        "pread64": [.fd, .buffer(lenArg: nil), .uint, .long],
        "write": [.fd, .buffer(lenArg: 2), .uint],
        "pwrite64": [.fd, .buffer(lenArg: 2), .uint, .long],
        "close": [.fd],
        "lseek": [.fd, .long, .named { Flags.value($0, Flags.seek) }],
        "fcntl": [.fd, .named { Flags.value($0, Flags.fcntl) }, .custom { Decoder.fcntlArg($0) }],
        "ioctl": [.fd, .named { Flags.value($0, Flags.ioctl, signed: false) }, .hex],
        "access": [.string, .named { Flags.bits($0, Flags.access, zero: "F_OK") }],
        "faccessat": [.dirfd, .string, .named { Flags.bits($0, Flags.access, zero: "F_OK") }],
        "faccessat2": [.dirfd, .string, .named { Flags.bits($0, Flags.access, zero: "F_OK") }, at],
        "stat": [.string, stat],
        "lstat": [.string, stat],
        "fstat": [.fd, stat],
        "newfstatat": [.dirfd, .string, stat, at],
        "statx": [
            .dirfd, .string, .named { Flags.statxFlags($0) }, .named { Flags.bits($0, Flags.statxMask, zero: "0") },
            .blob { Decoder.statx($0) },
        ],
        "uname": [.blob { Decoder.uname($0) }],
        "sysinfo": [.blob { Decoder.sysinfo($0) }],
        "statfs": [.string, .hex],
        "readlink": [.string, .buffer(lenArg: nil), .uint],
        "readlinkat": [.dirfd, .string, .buffer(lenArg: nil), .uint],
        // The path the kernel wrote, NUL-terminated (the return counts the NUL).
        "getcwd": [.string, .uint],
        "getxattr": [.string, .string, .hex, .uint],
        "lgetxattr": [.string, .string, .hex, .uint],
        "fgetxattr": [.fd, .string, .hex, .uint],
        "setxattr": [.string, .string, .buffer(lenArg: 3), .uint, .named { Flags.bits($0, xattrFlags) }],
        "lsetxattr": [.string, .string, .buffer(lenArg: 3), .uint, .named { Flags.bits($0, xattrFlags) }],
        "fsetxattr": [.fd, .string, .buffer(lenArg: 3), .uint, .named { Flags.bits($0, xattrFlags) }],
        "listxattr": [.string, .buffer(lenArg: nil), .uint],
        "llistxattr": [.string, .buffer(lenArg: nil), .uint],
        "flistxattr": [.fd, .buffer(lenArg: nil), .uint],
        "removexattr": [.string, .string],
        "lremovexattr": [.string, .string],
        "fremovexattr": [.fd, .string],
        "getrandom": [.buffer(lenArg: nil), .uint, .named { Flags.bits($0, Flags.getrandom) }],
        "umask": [.octal],
        "fchmod": [.fd, .octal],
        "fchdir": [.fd],
        // The new fd is named by what it referred to before the call, as strace -y does.
        "dup2": [.fd, .fd],
        "dup3": [.fd, .fd, .named { Flags.bits($0, Flags.cloexecOnly) }],
        "pipe": [fdPair],
        "pipe2": [fdPair, .named { Flags.bits($0, Flags.pipeFlags) }],
        "eventfd2": [.uint, .named { Flags.bits($0, Flags.eventfd) }],
        "epoll_create1": [.named { Flags.bits($0, [(0o2000000, "EPOLL_CLOEXEC")]) }],
        // struct epoll_event is 12 bytes (packed on x86_64); 16 are read (words are 8 bytes).
        "epoll_ctl": [
            .fd, .named { Flags.value($0, Flags.epollCtl) }, .fd,
            .record(words: 2, output: false) { b, _ in Decoder.epollEvents(b, count: 1, max: 1) },
        ],
        // The kernel wrote `ret` events; the first 4 (56 bytes) are read.
        "epoll_wait": [.fd, epollEvents, .int, .int],
        "epoll_pwait": [.fd, epollEvents, .int, .int, .hex, .uint],
        "epoll_pwait2": [.fd, epollEvents, .int, .hex, .hex, .uint],
        // Read at the return: the fds and events asked for, and the revents the kernel set.
        "poll": [pollFDs, .uint, .int],
        "ppoll": [pollFDs, .uint, .hex, .hex, .uint],
        "madvise": [.hex, .uint, .named { Flags.value($0, Flags.madvise) }],
        "clock_gettime": [clock, timespec(output: true)],
        "clock_getres": [clock, timespec(output: true)],
        "clock_nanosleep": [
            clock, .named { Flags.bits($0, [(1, "TIMER_ABSTIME")]) }, timespec(output: false), .hex,
        ],
        "nanosleep": [timespec(output: false), .hex],
        "rseq": [.hex, .named { Flags.hex($0) }, .int, .named { Flags.hex($0) }],
        "chdir": [.string],
        "chroot": [.string],
        "mkdir": [.string, .octal],
        "mkdirat": [.dirfd, .string, .octal],
        "rmdir": [.string],
        "unlink": [.string],
        "unlinkat": [.dirfd, .string, at],
        "rename": [.string, .string],
        "renameat": [.dirfd, .string, .dirfd, .string],
        "renameat2": [.dirfd, .string, .dirfd, .string, .uint],
        "symlink": [.string, .string],
        "symlinkat": [.string, .dirfd, .string],
        "link": [.string, .string],
        "linkat": [.dirfd, .string, .dirfd, .string, at],
        "chmod": [.string, .octal],
        "fchmodat": [.dirfd, .string, .octal],
        "chown": [.string, .int, .int],
        "lchown": [.string, .int, .int],
        "fchownat": [.dirfd, .string, .int, .int, at],
        "truncate": [.string, .long],
        "mknod": [.string, .octal, .hex],
        "mknodat": [.dirfd, .string, .octal, .hex],
        "utimensat": [.dirfd, .string, .hex, at],
        "memfd_create": [.string, .hex],
        "inotify_add_watch": [.fd, .string, .hex],
        // mounts and the root
        "mount": [.string, .string, .string, .named(Flags.mountFlags), .string],
        "umount2": [.string, .named { Flags.bits($0, Flags.umount) }],
        "pivot_root": [.string, .string],
        "open_tree": [.dirfd, .string, .hex],
        "move_mount": [.dirfd, .string, .dirfd, .string, .hex],
        "fsopen": [.string, .hex],
        "fsconfig": [.fd, .uint, .string, .string, .int],
        // namespaces and processes
        "clone": [.custom { Decoder.cloneCall($0) }] + (1...4).map { _ in .custom { _ in nil } },
        "clone3": [.cloneArgs, .uint],
        "unshare": [cloneNS],
        "setns": [.fd, cloneNS],
        "execve": [.string, .argv, .hex],
        "execveat": [.dirfd, .string, .argv, .hex, at],
        "exit": [.int],
        "exit_group": [.int],
        "wait4": [
            .int, .record(words: 1, output: true) { b, _ in Decoder.waitStatus(b) },
            .named { Flags.bits($0, Flags.wait) }, .hex,
        ],
        "waitid": [.int, .int, .hex, .named { Flags.bits($0, Flags.wait) }, .hex],
        "kill": [.int, signal],
        "tkill": [.int, signal],
        "tgkill": [.int, .int, signal],
        "pidfd_send_signal": [.fd, signal, .hex, .uint],
        "rt_sigaction": [signal, sigaction(output: false), sigaction(output: true), .uint],
        "futex": [.hex, .named { Decoder.futexOp($0) }] + (2...5).map { i in .custom { Decoder.futexArgs(i, $0) } },
        "rt_sigreturn": [
            .record(words: 1, output: false) { b, _ in "{mask=" + Decoder.sigset(Decoder.u64(b, 0)) + "}" }
        ],
        "rt_sigprocmask": [
            .named { Flags.value($0, Flags.sigprocmaskHow) }, sigset(output: false), sigset(output: true), .uint,
        ],
        // PR_SET_NAME and PR_GET_NAME: the name (a string slot), then nothing.
        "prctl": [
            .named { Flags.value($0, Flags.prctl) },
            .either(
                when: { $0.args[0] == 15 || $0.args[0] == 16 }, then: .string,
                otherwise: .custom { Decoder.prctlArgs(1, $0) }),
        ] + (2...4).map { i in .custom { Decoder.prctlArgs(i, $0) } },
        "sethostname": [.buffer(lenArg: 1), .uint],
        "setdomainname": [.buffer(lenArg: 1), .uint],
        // credentials
        "setresuid": [.int, .int, .int],
        "setresgid": [.int, .int, .int],
        "setuid": [.int],
        "setgid": [.int],
        "setgroups": [.int, .hex],
        // stage 12: capabilities, limits, seccomp
        "capset": [capHeader, caps(output: false)],
        "capget": [capHeader, caps(output: true)],
        "prlimit64": [
            .int, rlimitResource, rlimit(output: false, "RLIM64_INFINITY"), rlimit(output: true, "RLIM64_INFINITY"),
        ],
        "setrlimit": [rlimitResource, rlimit(output: false, "RLIM_INFINITY")],
        "getrlimit": [rlimitResource, rlimit(output: true, "RLIM_INFINITY")],
        "seccomp": [
            .named { Flags.value($0, Flags.seccompOp, signed: false) },
            .named { Flags.bits($0, Flags.seccompFilterFlags) },
            .record(words: 2, output: false) { Decoder.seccompArgs($0, $1) },
        ],
        // memory
        "mmap": [
            .hex, .uint, .named { Flags.bits($0, Flags.prot, zero: "PROT_NONE") }, .named(Flags.mmapFlags), .fd,
            .named { $0 == 0 ? "0" : Flags.hex($0) },
        ],
        "mprotect": [.hex, .uint, .named { Flags.bits($0, Flags.prot, zero: "PROT_NONE") }],
        "munmap": [.hex, .uint],
        "brk": [.hex],
        "arch_prctl": [
            .named {
                Flags.value(
                    $0,
                    [
                        (0x1001, "ARCH_SET_GS"), (0x1002, "ARCH_SET_FS"), (0x1003, "ARCH_GET_FS"),
                        (0x1004, "ARCH_GET_GS"), (0x3001, "ARCH_CET_STATUS"),
                    ])
            }, .hex,
        ],
        // sockets
        "socket": [
            .named { Flags.value($0, Flags.family) }, .named(Flags.socketType),
            .custom { call in
                switch call.args[0] {
                case 16: return Flags.value(call.args[2], Flags.netlink)
                case 2, 10:  // AF_INET, AF_INET6: strace names the IP protocol
                    return Flags.value(
                        call.args[2],
                        [
                            (0, "IPPROTO_IP"), (1, "IPPROTO_ICMP"), (6, "IPPROTO_TCP"), (17, "IPPROTO_UDP"),
                            (58, "IPPROTO_ICMPV6"), (132, "IPPROTO_SCTP"), (255, "IPPROTO_RAW"),
                        ])
                default: return String(Int32(truncatingIfNeeded: call.args[2]))
                }
            },
        ],
        "socketpair": [.named { Flags.value($0, Flags.family) }, .named(Flags.socketType), .int, fdPair],
        "shutdown": [.fd, .named { Flags.value($0, Flags.shutdown) }],
        "setsockopt": [
            .fd, .named { Flags.value($0, Flags.socketLevel) },
            .custom { $0.args[1] == 1 ? Flags.value($0.args[2], Flags.socketOptions) : String($0.args[2]) },
            .record(words: 1, output: false) { b, call in
                call.args[4] == 4 ? Decoder.intRef(b) : Flags.hex(call.args[3])
            },
            .uint,
        ],
        "accept4": [
            .fd, .hex, .hex, .named { Flags.bits($0, [(0o2000000, "SOCK_CLOEXEC"), (0o4000, "SOCK_NONBLOCK")]) },
        ],
        "bind": [.fd, .sockaddr(lenArg: 2), .uint],
        "connect": [.fd, .sockaddr(lenArg: 2), .uint],
        // On a netlink socket the kernel side reads the messages instead (see NetlinkDecoder).
        "sendto": [.fd, .netlink(otherwise: .buffer(lenArg: 2)), .uint, msgFlags, .sockaddr(lenArg: 5), .uint],
        "recvfrom": [.fd, .netlink(otherwise: .buffer(lenArg: nil)), .uint, msgFlags, .hex, .hex],
        "sendmsg": [.fd, .msghdr(output: false), msgFlags],
        "recvmsg": [.fd, .msghdr(output: true), msgFlags],
        "readv": [.fd, .iovec(output: true), .int],
        "writev": [.fd, .iovec(output: false), .int],
        "preadv": [.fd, .iovec(output: true), .int, .long],
        "pwritev": [.fd, .iovec(output: false), .int, .long],
        "preadv2": [
            .fd, .iovec(output: true), .int, .long, .custom { _ in nil }, .named { Flags.bits($0, Flags.rwf) },
        ],
        "pwritev2": [
            .fd, .iovec(output: false), .int, .long, .custom { _ in nil }, .named { Flags.bits($0, Flags.rwf) },
        ],
    ]
}
