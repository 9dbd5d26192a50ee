import Glibc

/// A write position in an `OutputBuffer`'s memory. A struct on the stack: writing through it
/// costs no reference counting and no exclusivity checks, which showed in profiles at hundreds
/// of thousands of events a second. `OutputBuffer.record` makes the room; writes past `end`
/// are dropped rather than overrun it.
struct Cursor {
    var p: UnsafeMutablePointer<UInt8>
    let end: UnsafeMutablePointer<UInt8>

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        guard p < end else { return }
        p.pointee = b
        p += 1
    }

    mutating func bytes(_ raw: UnsafeRawBufferPointer) {
        guard let src = raw.baseAddress else { return }
        let n = min(raw.count, end - p)
        p.update(from: src.assumingMemoryBound(to: UInt8.self), count: n)
        p += n
    }

    mutating func literal(_ s: StaticString) { s.withUTF8Buffer { bytes(UnsafeRawBufferPointer($0)) } }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
    }

    mutating func decimal(_ value: Int64) {
        if value < 0 {
            byte(UInt8(ascii: "-"))
            decimal(UInt64(value.magnitude))
        } else {
            decimal(UInt64(value))
        }
    }

    /// Two digits at a time, from a constant table (a StaticString: no lazy initialisation),
    /// written from the end of a 20-byte scratch (a UInt64 has at most 20 digits) and copied:
    /// no division loop first to count the digits (the raw arguments are pointers, 15 digits).
    mutating func decimal(_ value: UInt64) {
        if value < 10 {
            byte(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { buf in
            let pairs: StaticString =
                "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
            pairs.withUTF8Buffer { table in
                var q = 20
                var v = value
                while v >= 100 {
                    let r = Int(v % 100)
                    v /= 100
                    q -= 2
                    buf[q] = table[2 * r]
                    buf[q + 1] = table[2 * r + 1]
                }
                if v >= 10 {
                    q -= 2
                    buf[q] = table[2 * Int(v)]
                    buf[q + 1] = table[2 * Int(v) + 1]
                } else {
                    q -= 1
                    buf[q] = UInt8(truncatingIfNeeded: v) &+ 48
                }
                guard end - p >= 20 - q else { return }
                bytes(UnsafeRawBufferPointer(rebasing: buf[q..<20]))
            }
        }
    }

    @inline(__always)
    static func needsEscape(_ b: UInt8) -> Bool { b < 0x20 || b == 0x22 || b == 0x5C }

    /// One byte as it goes inside a JSON string.
    mutating func jsonByte(_ b: UInt8) {
        guard Self.needsEscape(b) else {
            byte(b)
            return
        }
        byte(0x5C)
        switch b {
        case 0x22, 0x5C: byte(b)
        case 0x0A: byte(UInt8(ascii: "n"))
        case 0x09: byte(UInt8(ascii: "t"))
        case 0x0D: byte(UInt8(ascii: "r"))
        default:
            let hex: StaticString = "0123456789abcdef"
            hex.withUTF8Buffer { h in
                byte(UInt8(ascii: "u"))
                byte(0x30)
                byte(0x30)
                byte(h[Int(b >> 4)])
                byte(h[Int(b & 15)])
            }
        }
    }

    /// Bytes as the inside of a JSON string: runs that need no escaping are copied whole.
    mutating func jsonEscaped(_ raw: UnsafeRawBufferPointer) {
        var start = 0
        for i in 0..<raw.count where Self.needsEscape(raw[i]) {
            if i > start { bytes(UnsafeRawBufferPointer(rebasing: raw[start..<i])) }
            jsonByte(raw[i])
            start = i + 1
        }
        if start < raw.count { bytes(UnsafeRawBufferPointer(rebasing: raw[start..<raw.count])) }
    }

    /// A JSON string literal.
    mutating func jsonString(_ s: String) {
        byte(0x22)
        var s = s
        s.withUTF8 { jsonEscaped(UnsafeRawBufferPointer($0)) }
        byte(0x22)
    }

    mutating func jsonStringOrNull(_ s: String?) {
        if let s { jsonString(s) } else { literal("null") }
    }
}

/// Bytes on their way to a file descriptor, in large writes.
final class OutputBuffer {
    let fd: Int32
    private let base: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private var count = 0
    /// Flush once this much is waiting (0: after every record).
    let limit: Int
    /// The most one record may take: 4 string slots of 256 bytes, each byte at most 6 once
    /// quoted and JSON-escaped, is under 8 KiB; the rest is a few hundred bytes.
    static let recordRoom = 64 << 10

    init(fd: Int32, limit: Int = 1 << 20) {
        self.fd = fd
        self.limit = limit
        capacity = limit + Self.recordRoom
        base = .allocate(capacity: capacity)
    }

    deinit {
        flush()
        base.deallocate()
    }

    /// Room for one record, written through a cursor.
    @inline(__always)
    func record(_ body: (inout Cursor) -> Void) {
        if count + Self.recordRoom > capacity { flush() }
        var cursor = Cursor(p: base + count, end: base + capacity)
        body(&cursor)
        count = cursor.p - base
        if count >= limit { flush() }
    }

    func flush() {
        var offset = 0
        while offset < count {
            let n = write(fd, base + offset, count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            offset += n
        }
        count = 0
    }

    /// Text of any length.
    func append(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            var offset = 0
            while offset < utf8.count {
                let n = min(utf8.count - offset, Self.recordRoom)
                record { $0.bytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[offset..<offset + n]))) }
                offset += n
            }
        }
    }
}

/// Writes through a cursor as plain text (the live view).
struct CursorSink: TextSink {
    var c: Cursor
    mutating func put(_ b: UInt8) { c.byte(b) }
    mutating func put(_ raw: UnsafeRawBufferPointer) { c.bytes(raw) }
    mutating func put(_ s: StaticString) { c.literal(s) }
    mutating func put(_ s: String) { c.string(s) }
    mutating func decimal(_ v: Int64) { c.decimal(v) }
    mutating func decimal(_ v: UInt64) { c.decimal(v) }
}

/// `--json FILE`: JSON Lines, one object per line, each with a "type".
///
/// Schema (version 1). Times are nanoseconds since the trace started (CLOCK_MONOTONIC); pids
/// are as the host sees them, `ns_pid`/`ns_tid` as the process sees itself (inside a
/// container's pid namespace; equal to `pid`/`tid` on the host).
/// - `{"type":"start","version":1,"mode":"host"|"step","step":N|null,"command":[…],"buffer_bytes":N,
///   "attach":"fentry"|"tracepoint"}`: always the first line (`step`: the stage of a `--step`
///   trace; `attach`: where the syscall programs hooked in, see `TraceAttachPoint`)
/// - `{"type":"syscall","ts_ns","dur_ns","pid","tid","ns_pid","ns_tid","comm","syscall","nr",
///    "args":[decoded, strace notation, one string per argument; netlink messages as
///    `NetlinkDecoder` writes them],"raw":[6 unsigned integers],
///    "ret":signed integer|null (null: exit/exit_group, or the thread died inside the call),
///    "errno":"ENOENT"|null,"unfinished":bool,"stage":"stage 4 · mount namespace + pivot_root"|null,
///    "stage_number":4|null,"lesson":"clab lesson 4"|null}` (`stage_number`: the stage's own
///    number, null for clab's plumbing and the command)
/// - `{"type":"fork","ts_ns","pid","tid","child_pid","child_tid","child_ns_pid","thread":bool,"comm"}`
/// - `{"type":"exec","ts_ns","pid","ns_pid","old_tid","comm"}` (comm: the new program's)
/// - `{"type":"exit","ts_ns","pid","comm","exit_code":N|null,"signal":"SIGKILL"|null}`
/// - `{"type":"oom","ts_ns","pid","ns_pid","comm"}`: the OOM killer chose this process
///   (the kernel's oom:mark_victim; a memory limit struck)
/// - `{"type":"cgroup","ts_ns","pid","tid","hierarchy","path"}`: a task moved into a cgroup
///   (cgroup:cgroup_attach_task; `path` within hierarchy number `hierarchy`)
/// - `{"type":"signal","ts_ns","pid","tid","signal":"SIGCHLD","text":"--- SIGCHLD {si_signo=...} ---"}`:
///   a signal delivered to a traced thread (signal:signal_deliver; SIGKILL is not, as in strace);
///   `"ignored":true`: one the kernel discarded at once as ignored (SIGCHLD at SIG_DFL), shown
///   where strace shows it; `"fatal":true`: a fatal signal without a handler, which ended the
///   process at once (no delivery), shown before its end
/// - `{"type":"lost","ts_ns","last_ns","count":N}`: `count` records the ring buffer had no room
///   for, dropped between `ts_ns` and `last_ns`, at this place in the stream
/// - `{"type":"end","events":N,"lost":N,"duration_ns":N}`: always the last line; `events` counts
///   the syscall lines written, `lost` the records the ring buffer had no room for (the sum of
///   the `lost` lines).
struct JSONLinesWriter {
    let out: OutputBuffer
    let startNs: UInt64

    init(fd: Int32, startNs: UInt64) {
        out = OutputBuffer(fd: fd)
        self.startNs = startNs
    }

    func start(mode: String, stage: Int?, command: [String], bufferBytes: Int, attach: TraceAttachPoint) {
        out.record { c in
            c.literal("{\"type\":\"start\",\"version\":1,\"mode\":")
            c.jsonString(mode)
            c.literal(",\"step\":")
            if let stage { c.decimal(Int64(stage)) } else { c.literal("null") }
            c.literal(",\"command\":[")
            for (i, arg) in command.enumerated() {
                if i > 0 { c.byte(UInt8(ascii: ",")) }
                c.jsonString(arg)
            }
            c.literal("],\"buffer_bytes\":")
            c.decimal(Int64(bufferBytes))
            c.literal(",\"attach\":")
            c.jsonString(attach.rawValue)
            c.literal("}\n")
        }
    }

    func syscall(
        _ call: Syscall, entry: SyscallCatalog.Entry?, process p: TracedProcess, nsTid: UInt32,
        fdPath: (Int64) -> String?, label: StageLabel?
    ) {
        let startNs = startNs
        out.record { c in
            c.literal("{\"type\":\"syscall\",\"ts_ns\":")
            c.decimal(Int64(bitPattern: call.ts &- startNs))
            c.literal(",\"dur_ns\":")
            c.decimal(call.duration)
            c.literal(",\"pid\":")
            c.decimal(UInt64(call.pid))
            c.literal(",\"tid\":")
            c.decimal(UInt64(call.tid))
            c.literal(",\"ns_pid\":")
            c.decimal(UInt64(p.nsPid))
            c.literal(",\"ns_tid\":")
            c.decimal(UInt64(nsTid))
            c.literal(",\"comm\":")
            p.commJSON.withUnsafeBytes { c.bytes($0) }
            if let entry {
                entry.jsonName.withUnsafeBytes { c.bytes($0) }
            } else {
                c.literal(",\"syscall\":")
                c.jsonString(call.name)
                c.literal(",\"nr\":")
                c.decimal(Int64(call.nr))
                if call.compat { c.literal(",\"abi\":\"i386\"") } else if call.x32 { c.literal(",\"abi\":\"x32\"") }
            }
            c.literal(",\"args\":[")
            var sink = JSONSink(c: c)
            var first = true
            if let entry {
                // The argument kinds read in place: an ArgKind copied out of the array is
                // retained and released per argument (it may hold a closure).
                entry.kinds.withUnsafeBufferPointer { kinds in
                    entry.slots.withUnsafeBufferPointer { slots in
                        for i in 0..<kinds.count {
                            let mark = sink.c.p
                            sink.c.literal(first ? "\"" : ",\"")
                            if Decoder.write(kinds[i], i, of: call, slot: slots[i], fdPath: fdPath, into: &sink) {
                                sink.c.byte(0x22)
                                first = false
                            } else {
                                sink.c.p = mark
                            }
                        }
                    }
                }
            } else {
                for i in 0..<6 {
                    sink.c.literal(i == 0 ? "\"" : ",\"")
                    _ = Decoder.writeArg(i, of: call, entry: nil, fdPath: fdPath, into: &sink)
                    sink.c.byte(0x22)
                }
            }
            c = sink.c
            c.literal("],\"raw\":[")
            for i in 0..<6 {
                if i > 0 { c.byte(UInt8(ascii: ",")) }
                c.decimal(call.args[i])
            }
            c.literal("],\"ret\":")
            if call.noReturn || call.unfinished { c.literal("null") } else { c.decimal(call.ret) }
            if let err = call.errno {
                c.literal(",\"errno\":\"")
                c.string(Decoder.errnoName(err))
                c.byte(0x22)
            } else {
                c.literal(",\"errno\":null")
            }
            c.literal(call.unfinished ? ",\"unfinished\":true" : ",\"unfinished\":false")
            if let label {
                c.literal(",\"stage\":")
                c.jsonString(label.title)
                if let n = label.stage {
                    c.literal(",\"stage_number\":")
                    c.decimal(Int64(n))
                } else {
                    c.literal(",\"stage_number\":null")
                }
                c.literal(",\"lesson\":")
                c.jsonStringOrNull(label.lesson)
                c.literal("}\n")
            } else {
                c.literal(",\"stage\":null,\"stage_number\":null,\"lesson\":null}\n")
            }
        }
    }

    func process(_ event: ProcessEvent) {
        let startNs = startNs
        out.record { c in
            switch event {
            case .fork(let ts, let pid, let tid, let childPid, let childTid, let childNsPid, _, let thread, let comm):
                c.literal("{\"type\":\"fork\",\"ts_ns\":")
                c.decimal(Int64(bitPattern: ts &- startNs))
                c.literal(",\"pid\":")
                c.decimal(UInt64(pid))
                c.literal(",\"tid\":")
                c.decimal(UInt64(tid))
                c.literal(",\"child_pid\":")
                c.decimal(UInt64(childPid))
                c.literal(",\"child_tid\":")
                c.decimal(UInt64(childTid))
                c.literal(",\"child_ns_pid\":")
                c.decimal(UInt64(childNsPid))
                c.literal(thread ? ",\"thread\":true,\"comm\":" : ",\"thread\":false,\"comm\":")
                c.jsonString(comm)
            case .exec(let ts, let pid, let oldTid, let nsPid, _, let comm):
                c.literal("{\"type\":\"exec\",\"ts_ns\":")
                c.decimal(Int64(bitPattern: ts &- startNs))
                c.literal(",\"pid\":")
                c.decimal(UInt64(pid))
                c.literal(",\"ns_pid\":")
                c.decimal(UInt64(nsPid))
                c.literal(",\"old_tid\":")
                c.decimal(UInt64(oldTid))
                c.literal(",\"comm\":")
                c.jsonString(comm)
            case .exit(let ts, let pid, let status, let comm):
                c.literal("{\"type\":\"exit\",\"ts_ns\":")
                c.decimal(Int64(bitPattern: ts &- startNs))
                c.literal(",\"pid\":")
                c.decimal(UInt64(pid))
                c.literal(",\"comm\":")
                c.jsonString(comm)
                let signal = status & 0x7F
                c.literal(",\"exit_code\":")
                if signal == 0 { c.decimal(Int64((status >> 8) & 0xFF)) } else { c.literal("null") }
                c.literal(",\"signal\":")
                c.jsonStringOrNull(signal == 0 ? nil : Flags.signal(UInt64(signal)))
            case .oom(let ts, let pid, let nsPid, let comm):
                c.literal("{\"type\":\"oom\",\"ts_ns\":")
                c.decimal(Int64(bitPattern: ts &- startNs))
                c.literal(",\"pid\":")
                c.decimal(UInt64(pid))
                c.literal(",\"ns_pid\":")
                c.decimal(UInt64(nsPid))
                c.literal(",\"comm\":")
                c.jsonString(comm)
            case .cgroup(let ts, let pid, let tid, let hierarchy, let path):
                c.literal("{\"type\":\"cgroup\",\"ts_ns\":")
                c.decimal(Int64(bitPattern: ts &- startNs))
                c.literal(",\"pid\":")
                c.decimal(UInt64(pid))
                c.literal(",\"tid\":")
                c.decimal(UInt64(tid))
                c.literal(",\"hierarchy\":")
                c.decimal(UInt64(hierarchy))
                c.literal(",\"path\":")
                c.jsonString(path)
            }
            c.literal("}\n")
        }
    }

    func lost(_ count: UInt64, firstTs: UInt64, lastTs: UInt64) {
        let startNs = startNs
        out.record { c in
            c.literal("{\"type\":\"lost\",\"ts_ns\":")
            c.decimal(Int64(bitPattern: firstTs &- startNs))
            c.literal(",\"last_ns\":")
            c.decimal(Int64(bitPattern: lastTs &- startNs))
            c.literal(",\"count\":")
            c.decimal(count)
            c.literal("}\n")
        }
    }

    /// `{"type":"signal","ts_ns","pid","tid","signal":"SIGCHLD","text":"--- SIGCHLD {...} ---"}`
    func signal(_ s: SignalDelivery, text: String) {
        let startNs = startNs
        out.record { c in
            c.literal("{\"type\":\"signal\",\"ts_ns\":")
            c.decimal(Int64(bitPattern: s.ts &- startNs))
            c.literal(",\"pid\":")
            c.decimal(UInt64(s.pid))
            c.literal(",\"tid\":")
            c.decimal(UInt64(s.tid))
            c.literal(",\"signal\":")
            c.jsonString(Flags.signal(UInt64(s.signal)))
            c.literal(",\"text\":")
            c.jsonString(text)
            if s.ignored { c.literal(",\"ignored\":true") }
            if s.fatal { c.literal(",\"fatal\":true") }
            c.literal("}\n")
        }
    }

    func end(events: UInt64, lost: UInt64, durationNs: UInt64) {
        out.record { c in
            c.literal("{\"type\":\"end\",\"events\":")
            c.decimal(events)
            c.literal(",\"lost\":")
            c.decimal(lost)
            c.literal(",\"duration_ns\":")
            c.decimal(durationNs)
            c.literal("}\n")
        }
        out.flush()
    }
}

/// The live view: one line per syscall on stderr, as strace prints them, with the process
/// (host pid, and the pid inside the container where it differs) and, for `--step`, a header
/// each time the stage changes; coloured by stage on a terminal.
struct LiveWriter {
    let out: OutputBuffer
    let color: Bool
    var lastLabel: StageLabel?

    init(fd: Int32, color: Bool) {
        // Written in batches: the reader flushes at the end of each (at least every 20 ms).
        out = OutputBuffer(fd: fd)
        self.color = color
    }

    static let palette = ["\u{1B}[36m", "\u{1B}[33m", "\u{1B}[32m", "\u{1B}[35m", "\u{1B}[34m", "\u{1B}[31m"]

    private func tint(_ label: StageLabel?) -> String {
        guard color, let label else { return "" }
        if let n = label.stage { return Self.palette[n % Self.palette.count] }
        return "\u{1B}[2m"
    }

    /// One traced syscall, written straight into the output buffer: no string per argument
    /// or per line (the reader writes hundreds of thousands a second). The same text as
    /// `Decoder.args` and `Decoder.result` make: the arguments with the fd table before the
    /// call; then `returned` runs (it applies the call to the fd table) and names what a
    /// returned fd refers to (dup2's new fd: `= 1<pipe:[...]>`, as strace -y).
    mutating func syscall(
        _ call: Syscall, process p: TracedProcess, nsTid: UInt32, label: StageLabel?, fdPath: (Int64) -> String?,
        returned: () -> String?
    ) {
        header(label)
        let tint = color && label != nil ? tint(label) : ""
        let entry = SyscallCatalog.entry(for: call)
        out.record { c in
            if !tint.isEmpty { c.string(tint) }
            c.string(p.comm)
            c.byte(0x20)
            c.decimal(UInt64(call.tid))
            if p.nsLevel > 0 {
                c.byte(UInt8(ascii: "/"))
                c.decimal(UInt64(nsTid))
            }
            c.literal("  ")
            // A 32-bit call is named by the i386 table (`call.name`), as `line` names it; an x32
            // call's entry is x32's.
            if !call.compat, let entry { c.string(entry.name) } else { c.string(call.name) }
            c.byte(UInt8(ascii: "("))
            var sink = CursorSink(c: c)
            var first = true
            for i in 0..<(entry?.kinds.count ?? 6) {
                // A call the thread died in: only what is known at entry (see `Decoder.args`).
                if call.unfinished, let kind = entry?.kinds[i], kind.isOutput { break }
                let mark = sink.c.p
                if !first { sink.c.literal(", ") }
                if Decoder.writeArg(i, of: call, entry: entry, fdPath: fdPath, into: &sink) {
                    first = false
                } else {
                    sink.c.p = mark
                }
            }
            if call.unfinished { sink.c.literal(first ? "<unfinished ...>" : ", <unfinished ...>") }
            c = sink.c
            c.literal(") = ")
            let path = returned()
            if call.errno == nil && !call.unfinished && !call.noReturn && entry?.returnsAddress != true
                && entry?.result == nil
            {
                c.decimal(call.ret)
            } else {
                c.string(Decoder.result(call))
            }
            if let path {
                c.byte(UInt8(ascii: "<"))
                c.string(path)
                c.byte(UInt8(ascii: ">"))
            }
            if !tint.isEmpty { c.literal("\u{1B}[0m") }
            c.byte(0x0A)
        }
    }

    /// Records lost at this point (the ring buffer was full), as strace marks what it skips.
    func lost(_ count: UInt64) {
        let text = "--- lost \(count) events ---"
        out.append(color ? "\u{1B}[1;31m" + text + "\u{1B}[0m\n" : text + "\n")
    }

    private mutating func header(_ label: StageLabel?) {
        guard let label, label != lastLabel else { return }
        lastLabel = label
        let lesson = label.lesson.map { "  (\($0))" } ?? ""
        out.append(
            tint(label) + (color ? "\u{1B}[1m" : "") + "── " + label.title + lesson + (color ? "\u{1B}[0m" : "") + "\n")
    }

    /// One syscall line, after a header when the stage changed (`clab trace view` too).
    mutating func line(
        comm: String, tid: UInt32, nsTid: UInt32?, name: String, args: [String], result: String, label: StageLabel?
    ) {
        header(label)
        var who = comm + " " + String(tid)
        if let nsTid { who += "/" + String(nsTid) }
        let line = who + "  " + name + "(" + args.joined(separator: ", ") + ") = " + result
        if color && label != nil {
            out.append(tint(label) + line + "\u{1B}[0m\n")
        } else {
            out.append(line + "\n")
        }
    }

    /// A line of its own: a signal's delivery, a process's end, an ABI switch (strace's notation).
    mutating func note(_ text: String) { out.append(text + "\n") }

    /// The kernel events that are news on their own: an OOM kill, a move into a cgroup.
    mutating func kernelEvent(_ event: ProcessEvent, comm: String?) {
        let text: String
        switch event {
        case .oom(_, let pid, _, let comm):
            text = "kernel  oom:mark_victim: the OOM killer chose \(comm) \(pid): a memory limit struck (clab lesson 8)"
        case .cgroup(_, let pid, let tid, let hierarchy, let path):
            let who = (comm ?? "?") + " " + String(pid) + (tid != pid ? "/\(tid)" : "")
            text = "kernel  cgroup:cgroup_attach_task: \(who) moved into \(path) (hierarchy \(hierarchy))"
        default:
            return
        }
        out.append(color ? "\u{1B}[1m" + text + "\u{1B}[0m\n" : text + "\n")
    }
}

/// `--summary`, laid out like `strace -c`.
enum SummaryTable {
    static func render(_ stats: [String: SyscallStat]) -> String {
        let rows = stats.sorted { a, b in
            a.value.nanoseconds != b.value.nanoseconds ? a.value.nanoseconds > b.value.nanoseconds : a.key < b.key
        }
        let total = rows.reduce(SyscallStat()) {
            SyscallStat(
                count: $0.count + $1.value.count, errors: $0.errors + $1.value.errors,
                nanoseconds: $0.nanoseconds + $1.value.nanoseconds)
        }
        let rule = "------ ----------- ----------- --------- --------- ----------------"
        var lines = ["% time     seconds  usecs/call     calls    errors syscall", rule]
        for (name, s) in rows {
            let share = total.nanoseconds > 0 ? Double(s.nanoseconds) * 100 / Double(total.nanoseconds) : 0
            let perCall = s.count > 0 ? s.nanoseconds / s.count / 1000 : 0
            lines.append(
                pad(fixed(share, 2), 6) + " " + pad(fixed(Double(s.nanoseconds) / 1e9, 6), 11) + " "
                    + pad(String(perCall), 11) + " " + pad(String(s.count), 9) + " "
                    + pad(s.errors > 0 ? String(s.errors) : "", 9) + " " + name)
        }
        lines.append(rule)
        lines.append(
            "100.00 " + pad(fixed(Double(total.nanoseconds) / 1e9, 6), 11) + " "
                + pad(String(total.count > 0 ? total.nanoseconds / total.count / 1000 : 0), 11) + " "
                + pad(String(total.count), 9) + " " + pad(total.errors > 0 ? String(total.errors) : "", 9) + " total")
        return lines.joined(separator: "\n") + "\n"
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (value * scale).rounded()
        let whole = Int64(scaled / scale)
        let frac = Int64(scaled) - whole * Int64(scale)
        let fracText = String(frac)
        return "\(whole)." + String(repeating: "0", count: max(0, digits - fracText.count)) + fracText
    }
}
