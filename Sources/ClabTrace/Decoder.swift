import CLibBPF
import Glibc

/// Turns a `Syscall` into strace's notation: `openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3`,
/// `clone3({flags=CLONE_NEWNS|CLONE_NEWPID, exit_signal=SIGCHLD}, 88) = 4242`,
/// `execve("/nope", ["nope"], 0x7ffd…) = -1 ENOENT (No such file or directory)`.
public enum Decoder {
    /// Longest buffer shown before "..." (strace's default is 32); paths are shown whole.
    static let maxShown = 64

    /// The arguments, decoded. `fdPath` names what an fd refers to, where the tracer knows.
    /// A call the thread died in shows, as strace does, only what is known at entry: the
    /// arguments before the first one the kernel fills, then `<unfinished ...>`.
    public static func args(_ call: Syscall, fdPath: (Int64) -> String? = { _ in nil }) -> [String] {
        let entry = SyscallCatalog.entry(for: call)
        var out: [String] = []
        for i in 0..<(entry?.kinds.count ?? 6) {
            if call.unfinished, let kind = entry?.kinds[i], kind.isOutput { break }
            var sink = BytesSink()
            if writeArg(i, of: call, entry: entry, fdPath: fdPath, into: &sink) { out.append(sink.string) }
        }
        if call.unfinished { out.append("<unfinished ...>") }
        return out
    }

    /// Writes argument `i` in strace notation; false when it is not shown (open's mode
    /// without O_CREAT). `entry`: the call's catalog entry (nil: unknown, shown in hex).
    static func writeArg<S: TextSink>(
        _ i: Int, of call: Syscall, entry: SyscallCatalog.Entry?, fdPath: (Int64) -> String?, into out: inout S
    ) -> Bool {
        let raw = call.args[i]
        guard let entry else {
            // strace's printargs for an unknown x32 number: 0 as `0`.
            if call.x32 && raw == 0 { out.put(UInt8(ascii: "0")) } else { writeHex(raw, into: &out) }
            return true
        }
        return write(entry.kinds[i], i, of: call, slot: entry.slots[i], fdPath: fdPath, into: &out)
    }

    /// Argument `i` shown as `kind`; `slot`: its string slot.
    static func write<S: TextSink>(
        _ kind: ArgKind, _ i: Int, of call: Syscall, slot: Int?, fdPath: (Int64) -> String?, into out: inout S
    ) -> Bool {
        let raw = call.args[i]
        switch kind {
        case .int: out.decimal(Int64(Int32(truncatingIfNeeded: raw)))
        case .long: out.decimal(Int64(bitPattern: raw))
        case .uint: out.decimal(raw)
        case .uint32: out.decimal(UInt64(UInt32(truncatingIfNeeded: raw)))
        case .hex: writePointer(raw, into: &out)
        case .octal: writeOctal(raw, into: &out)
        case .fd: writeFD(raw, fdPath, into: &out)
        case .dirfd:
            if Int32(truncatingIfNeeded: raw) == -100 {
                out.put("AT_FDCWD" as StaticString)
                if let cwd = fdPath(-100) {  // strace -y: the working directory
                    out.put(UInt8(ascii: "<"))
                    out.put(cwd)
                    out.put(UInt8(ascii: ">"))
                }
            } else {
                writeFD(raw, fdPath, into: &out)
            }
        case .modeIf(let flagsArg):
            guard Flags.needsMode(call.args[flagsArg]) else { return false }
            writeOctal(raw, into: &out)
        case .named(let name): out.put(name(raw))
        case .custom(let render):
            guard let text = render(call) else { return false }
            out.put(text)
        case .string:
            let shown: Bool? = slot.flatMap { s in
                call.withSlot(s) { bytes in
                    guard let bytes else { return false }
                    writeCString(bytes, into: &out)
                    return true
                }
            }
            if shown != true { writePointer(raw, into: &out) }  // NULL, or unreadable (not paged in)
        case .buffer(let lenArg):
            let length = lenArg.map { call.args[$0] } ?? UInt64(max(0, call.ret))
            if raw == 0 || lenArg == nil && call.errno != nil || call.unfinished {
                writePointer(raw, into: &out)  // nothing was read into it
                return true
            }
            let shown: Bool? = slot.flatMap { s in
                call.withSlot(s) { bytes in
                    guard let bytes else { return false }
                    writeQuoted(bytes, truncated: UInt64(bytes.count) < length, into: &out)
                    return true
                }
            }
            if shown != true {
                // A call that returned 0 filled nothing (listxattr without names): strace's "".
                if length == 0 && lenArg == nil {
                    out.put("\"\"" as StaticString)
                } else {
                    writePointer(raw, into: &out)
                }
            }
        case .argv:
            // Unreadable is not empty: the address, as strace shows what it cannot read.
            if raw == 0 || call.argvUnreadable && call.argv.isEmpty {
                writePointer(raw, into: &out)
            } else {
                out.put(argv(call))
            }
        case .cloneArgs:
            if let bytes = slot.flatMap(call.string) {
                out.put(cloneArgs(bytes))
                // CLONE_PARENT_SETTID: the kernel stored the child's tid, the value it returns.
                let flags = bytes.count >= 8 ? u64(bytes, 0) : 0
                if flags & 0x100000 != 0 && call.ret > 0 && !call.unfinished {
                    out.put(" => {parent_tid=[" as StaticString)
                    out.decimal(call.ret)
                    out.put("]}" as StaticString)
                }
            } else {
                writePointer(raw, into: &out)
            }
        case .sockaddr:
            if let nl = call.netlink {
                // The netlink record carries the address itself (there are no string slots).
                if raw != 0 && !nl.address.isEmpty {
                    out.put(sockaddr(nl.address))
                } else {
                    writePointer(raw, into: &out)
                }
            } else if raw != 0, let bytes = slot.flatMap(call.string) {
                out.put(sockaddr(bytes))
            } else {
                writePointer(raw, into: &out)
            }
        case .record(let words, let output, let render):
            if raw != 0, !output || call.errno == nil && !call.unfinished,
                let bytes = slot.flatMap(call.string), bytes.count >= words * 8
            {
                out.put(render(bytes, call))
            } else {
                writePointer(raw, into: &out)  // NULL, unreadable, or an output the call never filled
            }
        case .fdRecord(let words, let output, let render):
            if raw != 0, !output || call.errno == nil && !call.unfinished,
                let bytes = slot.flatMap(call.string), bytes.count >= words * 8
            {
                out.put(render(bytes, call, fdPath))
            } else {
                writePointer(raw, into: &out)
            }
        case .either(let when, let then, let otherwise):
            return write(when(call) ? then : otherwise, i, of: call, slot: slot, fdPath: fdPath, into: &out)
        case .netlink(let otherwise):
            guard let nl = call.netlink else {
                return write(otherwise, i, of: call, slot: slot, fdPath: fdPath, into: &out)
            }
            writeNetlinkBuffer(nl, pointer: raw, of: call, into: &out)
        case .blob(let render):
            if let bytes = call.blob, raw != 0, call.errno == nil, !call.unfinished {
                out.put(render(bytes))
            } else {
                writePointer(raw, into: &out)  // not read, or the call failed
            }
        case .iovec(let output):
            guard let iov = call.iov, raw != 0, !output || call.errno == nil && !call.unfinished else {
                writePointer(raw, into: &out)  // not read, or buffers the call never filled
                return true
            }
            writeIOV(iov, filled: output ? UInt64(max(0, call.ret)) : nil, into: &out)
        case .msghdr(let output):
            guard let nl = call.netlink, raw != 0 else {
                if let iov = call.iov, let header = iov.msghdr, raw != 0,
                    !output || call.errno == nil && !call.unfinished
                {
                    writeMsghdr(
                        header, iov, filled: output ? UInt64(max(0, call.ret)) : nil, fdPath: fdPath, into: &out)
                } else {
                    writePointer(raw, into: &out)
                }
                return true
            }
            if !nl.address.isEmpty {
                out.put("{msg_name=" as StaticString)
                out.put(sockaddr(nl.address))
                out.put(", msg_iov=" as StaticString)
            } else {
                out.put("{msg_iov=" as StaticString)
            }
            if nl.iovlen == 0 {
                out.put("[]" as StaticString)
            } else {
                out.put("[{iov_base=" as StaticString)
                writeNetlinkBuffer(nl, pointer: nl.base, of: call, into: &out)
                out.put(", iov_len=" as StaticString)
                out.decimal(nl.bufferLength)
                out.put(nl.iovlen > 1 ? "}, ...]" as StaticString : "}]" as StaticString)
            }
            out.put(", msg_iovlen=" as StaticString)
            out.decimal(nl.iovlen)
            out.put(UInt8(ascii: "}"))
        }
        return true
    }

    /// An iovec array as strace: `[{iov_base="ab", iov_len=2}, {iov_base="cd\n", iov_len=3}]`.
    /// `filled`: a read's return value (its buffers hold that many bytes, in order); nil: a write.
    static func writeIOV<S: TextSink>(_ iov: IOVCapture, filled: UInt64?, into out: inout S) {
        out.put(UInt8(ascii: "["))
        var left = filled ?? UInt64.max
        for (i, entry) in iov.entries.enumerated() {
            if i > 0 { out.put(", " as StaticString) }
            let holds = min(entry.length, left)
            left -= holds
            out.put("{iov_base=" as StaticString)
            entry.data.withUnsafeBytes { writeQuoted($0, truncated: UInt64(entry.data.count) < holds, into: &out) }
            out.put(", iov_len=" as StaticString)
            out.decimal(entry.length)
            out.put(UInt8(ascii: "}"))
        }
        if UInt64(iov.entries.count) < iov.iovlen {
            out.put(iov.entries.isEmpty ? "..." as StaticString : ", ..." as StaticString)
        }
        out.put(UInt8(ascii: "]"))
    }

    /// struct user_msghdr as strace: `{msg_name=NULL, msg_namelen=0, msg_iov=[...], msg_iovlen=1,
    /// msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[3]}],
    /// msg_controllen=24, msg_flags=0}`. A control buffer not read is shown by its address.
    static func writeMsghdr<S: TextSink>(
        _ h: [UInt8], _ iov: IOVCapture, filled: UInt64?, fdPath: (Int64) -> String?, into out: inout S
    ) {
        let name = u64(h, 0)
        out.put("{msg_name=" as StaticString)
        if name == 0 {
            out.put("NULL" as StaticString)
        } else if !iov.name.isEmpty {
            out.put(sockaddr(iov.name))
        } else {
            writeHex(name, into: &out)
        }
        out.put(", msg_namelen=" as StaticString)
        out.decimal(Int64(i32(h, 8)))
        out.put(", msg_iov=" as StaticString)
        writeIOV(iov, filled: filled, into: &out)
        out.put(", msg_iovlen=" as StaticString)
        out.decimal(u64(h, 24))
        let control = u64(h, 32)
        let controlLength = u64(h, 40)
        if controlLength != 0 {
            out.put(", msg_control=" as StaticString)
            if let capture = iov.control, control != 0 {
                writeControl(capture, address: control, fdPath: fdPath, into: &out)
            } else {
                writePointer(control, into: &out)
            }
        }
        out.put(", msg_controllen=" as StaticString)
        out.decimal(controlLength)
        out.put(", msg_flags=" as StaticString)
        out.put(Flags.bits(UInt64(u32(h, 48)), Flags.msg))
        out.put(UInt8(ascii: "}"))
    }

    /// The netlink messages of a send, or of what a receive got; the address when there are none.
    static func writeNetlinkBuffer<S: TextSink>(
        _ nl: NetlinkCapture, pointer: UInt64, of call: Syscall, into out: inout S
    ) {
        let receive = call.nr == 45 || call.nr == 47  // recvfrom, recvmsg (x86_64, as the kernel side)
        let expected = receive ? min(nl.bufferLength, UInt64(max(0, call.ret))) : nl.bufferLength
        if nl.bytes.isEmpty && (expected > 0 || pointer == 0 || call.errno != nil) {
            writePointer(pointer, into: &out)  // unreadable, or nothing was received
            return
        }
        out.put(NetlinkDecoder.messages(nl.bytes, proto: nl.proto, expected: expected))
    }

    /// `= 3`, `= -1 ENOENT (No such file or directory)`, `= 0x7f…` (mmap), `= ?` (exit_group).
    public static func result(_ call: Syscall) -> String {
        if call.unfinished || call.noReturn { return "?" }
        // ERESTARTSYS..ERESTART_RESTARTBLOCK never reach the program: strace's `= ? ERESTARTSYS (...)`.
        if let err = call.errno, (512...516).contains(err) {
            return "? " + errnoName(err) + " (" + errnoMessage(err) + ")"
        }
        if let err = call.errno { return "-1 " + errnoName(err) + " (" + errnoMessage(err) + ")" }
        let entry = SyscallCatalog.entry(for: call)
        if entry?.returnsAddress == true { return Flags.hex(UInt64(bitPattern: call.ret)) }
        if let decode = entry?.result, let text = decode(call) { return text }
        return String(call.ret)
    }

    /// The whole strace line.
    public static func line(_ call: Syscall, fdPath: (Int64) -> String? = { _ in nil }) -> String {
        call.name + "(" + args(call, fdPath: fdPath).joined(separator: ", ") + ") = " + result(call)
    }

    // MARK: - pieces

    static func writeFD<S: TextSink>(_ raw: UInt64, _ fdPath: (Int64) -> String?, into out: inout S) {
        let n = Int64(Int32(truncatingIfNeeded: raw))
        out.decimal(n)
        if let path = fdPath(n) {
            out.put(UInt8(ascii: "<"))
            out.put(path)
            out.put(UInt8(ascii: ">"))
        }
    }

    static func writeOctal<S: TextSink>(_ raw: UInt64, into out: inout S) { out.put("0" + String(raw, radix: 8)) }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeHex<S: TextSink>(_ raw: UInt64, into out: inout S) {
        out.put("0x" as StaticString)
        var shift = 60
        while shift > 0 && (raw >> UInt64(shift)) & 15 == 0 { shift -= 4 }
        while shift >= 0 {
            out.put(hexDigits[Int((raw >> UInt64(shift)) & 15)])
            shift -= 4
        }
    }

    static func writePointer<S: TextSink>(_ raw: UInt64, into out: inout S) {
        if raw == 0 { out.put("NULL" as StaticString) } else { writeHex(raw, into: &out) }
    }

    static func writeCString<S: TextSink>(_ raw: UnsafeRawBufferPointer, into out: inout S) {
        let end = raw.firstIndex(of: 0)
        // The kernel side reads at most CLAB_STR_MAX bytes with the NUL into a slot, and a string
        // that fills it again whole into a long-string record (up to CLAB_LONGSTR_MAX, which
        // replaces the slot, one byte longer): a slot still exactly full was cut (that record
        // was lost), as is a long one that reached its own limit.
        let cut = raw.count == Int(CLAB_STR_MAX) || raw.count >= Int(CLAB_LONGSTR_MAX)
        writeQuoted(
            UnsafeRawBufferPointer(rebasing: raw[..<(end ?? raw.count)]), truncated: end == nil || cut,
            limit: Int(CLAB_LONGSTR_MAX), into: &out)
    }

    static func cString(_ bytes: [UInt8]?, pointer: UInt64) -> String {
        var sink = BytesSink()
        if let bytes {
            bytes.withUnsafeBytes { writeCString($0, into: &sink) }
        } else {
            writePointer(pointer, into: &sink)
        }
        return sink.string
    }

    static func argv(_ call: Syscall) -> String {
        let items = call.argv.map { quote($0, truncated: false) }
        return "[" + items.joined(separator: ", ") + (call.argvTruncated ? ", ...]" : "]")
    }

    /// A C string literal as strace writes it: `"a\tb\n\33"`, "..." after it when cut short.
    public static func quote(_ bytes: [UInt8], truncated: Bool = false) -> String {
        var sink = BytesSink()
        bytes.withUnsafeBytes { writeQuoted($0, truncated: truncated, into: &sink) }
        return sink.string
    }

    static func writeQuoted<S: TextSink>(
        _ bytes: UnsafeRawBufferPointer, truncated: Bool, limit: Int = maxShown, into out: inout S
    ) {
        out.put(UInt8(ascii: "\""))
        let shown = min(bytes.count, limit)
        var i = 0
        while i < shown {
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.put(UInt8(ascii: "\\"))
                out.put(b)
            case 0x0A: out.put("\\n" as StaticString)
            case 0x09: out.put("\\t" as StaticString)
            case 0x0D: out.put("\\r" as StaticString)
            case 0x0B: out.put("\\v" as StaticString)
            case 0x0C: out.put("\\f" as StaticString)
            case 0x20..<0x7F: out.put(b)
            default:
                // Octal, as short as the next character allows.
                let next = i + 1 < shown ? bytes[i + 1] : 0
                let wide = next >= UInt8(ascii: "0") && next <= UInt8(ascii: "7")
                out.put(UInt8(ascii: "\\"))
                if wide || b >= 64 { out.put(48 + (b >> 6)) }
                if wide || b >= 8 { out.put(48 + ((b >> 3) & 7)) }
                out.put(48 + (b & 7))
            }
            i += 1
        }
        out.put(UInt8(ascii: "\""))
        if truncated || bytes.count > limit { out.put("..." as StaticString) }
    }

    /// struct clone_args (include/uapi/linux/sched.h): the fields that are set.
    static func cloneArgs(_ bytes: [UInt8]) -> String {
        func field(_ i: Int) -> UInt64 {
            guard (i + 1) * 8 <= bytes.count else { return 0 }
            return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) }
        }
        var parts = ["flags=" + Flags.bits(field(0), Flags.cloneWithTime)]
        let names = ["pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls", "set_tid"]
        for (i, name) in names.enumerated() {
            let v = field(i + 1)
            if name == "exit_signal" {
                parts.append("exit_signal=" + (v == 0 ? "0" : Flags.signal(v)))
            } else if name == "pidfd" && field(0) & 0x1000 == 0 {
                continue  // only meaningful with CLONE_PIDFD (strace leaves it out otherwise)
            } else if v != 0 {
                parts.append(name + "=" + Flags.hex(v))
            }
        }
        if field(10) != 0 { parts.append("cgroup=\(field(10))") }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    /// struct sockaddr by family: unix paths, IPv4/IPv6 addresses and ports, netlink.
    static func sockaddr(_ bytes: [UInt8]) -> String {
        guard bytes.count >= 2 else { return "{}" }
        let family = UInt64(bytes[0]) | UInt64(bytes[1]) << 8
        let name = "sa_family=" + Flags.value(family, Flags.family)
        func be16(_ at: Int) -> Int { at + 1 < bytes.count ? Int(bytes[at]) << 8 | Int(bytes[at + 1]) : 0 }
        func le32(_ at: Int) -> UInt32 {
            guard at + 4 <= bytes.count else { return 0 }
            return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
        }
        switch family {
        case 1:
            let path = Array(bytes.dropFirst(2))
            if path.first == 0 { return "{\(name), sun_path=@" + quote(Array(path.dropFirst())) + "}" }
            return "{\(name), sun_path=" + cString(path, pointer: 0) + "}"
        case 2 where bytes.count >= 8:
            let addr = bytes[4..<8].map(String.init).joined(separator: ".")
            return "{\(name), sin_port=htons(\(be16(2))), sin_addr=inet_addr(\"\(addr)\")}"
        case 10 where bytes.count >= 24:
            let groups = stride(from: 8, to: 24, by: 2).map { String(be16($0), radix: 16) }
            return "{\(name), sin6_port=htons(\(be16(2))), sin6_addr=\"\(groups.joined(separator: ":"))\"}"
        case 16:
            return "{\(name), nl_pid=\(le32(4)), nl_groups=" + hex08(le32(8)) + "}"
        default:
            return "{\(name), ...}"
        }
    }

    // MARK: - errno

    public static func errnoName(_ err: Int32) -> String { SyscallTable.errnoNames[err] ?? "E\(err)" }

    public static func errnoMessage(_ err: Int32) -> String {
        switch err {
        case 512: return "To be restarted if SA_RESTART is set"
        case 513: return "To be restarted"
        case 514: return "To be restarted if no handler"
        case 515: return "Inappropriate ioctl for device"
        case 516: return "Interrupted by signal"
        default: return String(cString: strerror(err))
        }
    }
}

/// Eight hex digits, zero-padded (netlink groups, as strace shows them).
func hex08(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

/// Where decoded text goes: a string being built, or a JSON string being written.
protocol TextSink {
    mutating func put(_ b: UInt8)
    mutating func put(_ bytes: UnsafeRawBufferPointer)
    mutating func put(_ s: StaticString)
    mutating func put(_ s: String)
    mutating func decimal(_ v: Int64)
    mutating func decimal(_ v: UInt64)
}

struct BytesSink: TextSink {
    var bytes: [UInt8] = []
    var string: String { String(decoding: bytes, as: UTF8.self) }
    mutating func put(_ b: UInt8) { bytes.append(b) }
    mutating func put(_ raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }
    mutating func put(_ s: StaticString) { s.withUTF8Buffer { bytes.append(contentsOf: $0) } }
    mutating func put(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func decimal(_ v: Int64) { put(String(v)) }
    mutating func decimal(_ v: UInt64) { put(String(v)) }
}

/// Writes through a cursor as the inside of a JSON string.
struct JSONSink: TextSink {
    var c: Cursor
    mutating func put(_ b: UInt8) { c.jsonByte(b) }
    mutating func put(_ raw: UnsafeRawBufferPointer) { c.jsonEscaped(raw) }
    mutating func put(_ s: StaticString) { s.withUTF8Buffer { c.jsonEscaped(UnsafeRawBufferPointer($0)) } }
    mutating func put(_ s: String) {
        var s = s
        s.withUTF8 { c.jsonEscaped(UnsafeRawBufferPointer($0)) }
    }
    mutating func decimal(_ v: Int64) { c.decimal(v) }
    mutating func decimal(_ v: UInt64) { c.decimal(v) }
}
