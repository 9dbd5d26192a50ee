import CLibBPF
import ClabDevices
import ClabSys
import Glibc

/// What the kernel program computes: a record per syscall, or only per-syscall totals.
public enum TraceMode: Sendable {
    /// One ring-buffer record per syscall and per fork/exec/exit (JSON, live output).
    case events
    /// Count, errors and time per syscall in a per-CPU kernel map; nothing per event (`--summary`).
    case count
}

/// Where the syscall programs hook in (bpf/clab_trace.bpf.c says what each one costs).
public enum TraceAttachPoint: String, Sendable {
    /// BPF trampolines on x64_sys_call and ia32_sys_call (Linux 6.9+): no cost to untraced tasks
    /// beyond a call and a load.
    case fentry
    /// The raw_syscalls tracepoints: every task on the machine takes the syscall slow path
    /// while they are attached. The fallback where fentry cannot attach.
    case tracepoint

    /// What the JSON `start` record and the closing line name.
    var hooks: String {
        switch self {
        case .fentry: "fentry/fexit on x64_sys_call, ia32_sys_call"
        case .tracepoint: "raw_syscalls tracepoints"
        }
    }

    /// `CLAB_TRACE_ATTACH=fentry|tracepoint` picks one; unset, the tracepoints. fentry is
    /// experimental and opt-in: no kernel clab has been tested on loads it (this project's
    /// machines refuse fentry), and fexit on a dispatch that exit/exit_group never return
    /// through may pin a trampoline per trace on some kernels. It stays off by default until a
    /// kernel that loads it has run the strace-equivalence corpus through it.
    static func forced() throws -> TraceAttachPoint? {
        guard let raw = getenv("CLAB_TRACE_ATTACH"), raw.pointee != 0 else { return nil }
        let value = String(cString: raw)
        guard let point = TraceAttachPoint(rawValue: value) else {
            throw ClabError("trace: CLAB_TRACE_ATTACH=\(value): say fentry or tracepoint (or unset it)", exitCode: 2)
        }
        return point
    }
}

/// clab's BPF program (bpf/clab_trace.bpf.c), loaded and attached with libbpf.
///
/// The object is compiled by the build (Plugins/BPFCompiler) and embedded in the binary; libbpf
/// relocates it against this kernel's BTF (CO-RE). Only the programs of the chosen mode are
/// loaded. Nothing is pinned: closing the object (or clab dying) detaches everything.
final class TraceProgram {
    private let object: OpaquePointer
    private var links: [OpaquePointer] = []
    let mode: TraceMode
    let attachPoint: TraceAttachPoint
    let trackedFD: Int32
    let eventsFD: Int32
    let statsFD: Int32
    let countersFD: Int32
    let captureFD: Int32
    let configFD: Int32
    let inflightFD: Int32
    /// The ring buffer's size in bytes, as loaded (a power of two).
    let bufferBytes: Int

    /// Loads and attaches the program at the tracepoints, or with fentry when CLAB_TRACE_ATTACH
    /// asks for it (see `forced`). Nothing is traced yet: no task is marked before the maps are
    /// filled and `track` is called.
    static func attached(mode: TraceMode, bufferBytes: Int) throws -> TraceProgram {
        let forced = try TraceAttachPoint.forced()
        let fentry = forced == .fentry && fentryLoads()
        if forced == .fentry && !fentry {
            throw ClabError(
                "trace: CLAB_TRACE_ATTACH=fentry: this kernel refuses an fentry program on x64_sys_call (it needs Linux 6.9+, BTF, BPF trampolines and no policy against them); unset CLAB_TRACE_ATTACH to use the tracepoints"
            )
        }
        if fentry {
            do {
                let program = try TraceProgram(mode: mode, bufferBytes: bufferBytes, attachPoint: .fentry)
                try program.attach()
                return program
            } catch {
                // Older than 6.9 (no x64_sys_call), no trampolines: the tracepoints will do.
                if forced == .fentry { throw error }
            }
        }
        let program = try TraceProgram(mode: mode, bufferBytes: bufferBytes, attachPoint: .tracepoint)
        try program.attach()
        return program
    }

    /// Whether this kernel loads an fentry program on x64_sys_call: a two-instruction one,
    /// loaded and closed. Asked first because a refused fentry costs a whole failed load of
    /// clab's object otherwise, and a kernel may refuse it even where x64_sys_call exists (a BPF
    /// LSM policy: EPERM). A kernel with the x32 ABI dispatches those calls through
    /// x32_sys_call, which clab does not hook: there the tracepoints, so that no call can hide.
    static func fentryLoads() -> Bool {
        guard let ids = kernelFunctionIDs(["x64_sys_call", "x32_sys_call"]), let id = ids["x64_sys_call"],
            ids["x32_sys_call"] == nil
        else { return false }
        // r0 = 0; exit
        var insns = [bpf_insn(), bpf_insn()]
        insns[0].code = 0xB7
        insns[1].code = 0x95
        var opts = bpf_prog_load_opts()
        opts.sz = MemoryLayout<bpf_prog_load_opts>.size
        opts.expected_attach_type = BPF_TRACE_FENTRY
        opts.attach_btf_id = id
        let fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "clab_probe", "GPL", insns, 2, &opts)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// The BTF type ids of the kernel functions named, read from /sys/kernel/btf/vmlinux by hand:
    /// one pass over the type section, no index (libbpf's parse of the whole 5 MB took 3 to 30 ms
    /// here, on every trace, before libbpf parses it again to load). nil: not BTF as expected.
    static func kernelFunctionIDs(_ names: [String], path: String = "/sys/kernel/btf/vmlinux") -> [String: UInt32]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 24, st.st_size < 1 << 28 else { return nil }
        var data = [UInt8](repeating: 0, count: Int(st.st_size))
        var filled = 0
        while filled < data.count {
            let n = data.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return -1 }
                return read(fd, base + filled, buffer.count - filled)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            filled += n
        }
        return data.withUnsafeBytes { raw -> [String: UInt32]? in
            func u32(_ at: Int) -> UInt32 { raw.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
            // struct btf_header: magic (0xeB9F, host order), version, flags, hdr_len, type_off,
            // type_len, str_off, str_len.
            guard filled >= 24, raw.loadUnaligned(as: UInt16.self) == 0xEB9F else { return nil }
            let header = Int(u32(4))
            let types = header + Int(u32(8))
            let typesEnd = types + Int(u32(12))
            let strings = header + Int(u32(16))
            let stringsEnd = strings + Int(u32(20))
            guard typesEnd <= filled, stringsEnd <= filled else { return nil }
            let wanted = Dictionary(uniqueKeysWithValues: names.map { (Array($0.utf8), $0) })
            let lengths = Set(wanted.keys.map(\.count))
            var found: [String: UInt32] = [:]
            var offset = types
            var id: UInt32 = 1
            while offset + 12 <= typesEnd {
                let nameOffset = Int(u32(offset))
                let info = u32(offset + 4)
                let vlen = Int(info & 0xFFFF)
                // The bytes each kind has after its 12-byte struct btf_type.
                let extra: Int
                switch (info >> 24) & 0x1F {
                case 2, 7, 8, 9, 10, 11, 12, 16, 18: extra = 0  // PTR FWD TYPEDEF qualifiers FUNC FLOAT TYPE_TAG
                case 1, 14, 17: extra = 4  // INT VAR DECL_TAG
                case 3: extra = 12  // ARRAY
                case 4, 5, 15, 19: extra = 12 * vlen  // STRUCT UNION DATASEC ENUM64
                case 6, 13: extra = 8 * vlen  // ENUM FUNC_PROTO
                default: return nil  // a kind this reader does not know: no guess
                }
                if (info >> 24) & 0x1F == 12, strings + nameOffset < stringsEnd {
                    var end = strings + nameOffset
                    while end < stringsEnd && raw[end] != 0 { end += 1 }
                    if lengths.contains(end - strings - nameOffset),
                        let name = wanted[Array(raw[(strings + nameOffset)..<end])]
                    {
                        found[name] = id
                    }
                }
                offset += 12 + extra
                id += 1
            }
            return found
        }
    }

    /// Opens, sizes and loads the program; attaching is a separate step (`attach()`).
    init(mode: TraceMode, bufferBytes: Int, attachPoint: TraceAttachPoint) throws {
        self.mode = mode
        self.attachPoint = attachPoint
        Libbpf.quiet()
        var logBuffer = [CChar](repeating: 0, count: 1 << 20)
        guard let object = Libbpf.open(EmbeddedObject.bytes, name: "clab_trace") else {
            throw ClabError("trace: libbpf could not open the BPF program: \(errnoDescription(errno))")
        }
        self.object = object
        do {
            let ring = try Self.map(object, "events")
            // Count mode writes no records: the smallest ring buffer will do.
            let size = mode == .count ? Int(getpagesize()) : Self.ringSize(bufferBytes)
            guard bpf_map__set_max_entries(ring, UInt32(size)) == 0 else {
                throw ClabError("trace: cannot size the ring buffer to \(size) bytes")
            }
            self.bufferBytes = size
            // Each mode loads its syscall programs at one attach point; the ones that only
            // write records (exec, OOM, cgroup moves, signals) are left out of count mode.
            let wanted = Self.syscallPrograms(mode: mode, at: attachPoint)
            let unwanted: Set<String> =
                Set(
                    [TraceMode.events, .count].flatMap { m in
                        [TraceAttachPoint.fentry, .tracepoint].flatMap { Self.syscallPrograms(mode: m, at: $0) }
                    }
                ).subtracting(wanted)
                .union(
                    mode == .count
                        ? [
                            "on_exec", "on_oom_victim", "on_cgroup_attach", "on_signal", "on_signal_generate",
                            Self.markProgram,
                        ] : [])
            var program = bpf_object__next_program(object, nil)
            while let p = program {
                if unwanted.contains(String(cString: bpf_program__name(p))) { bpf_program__set_autoload(p, false) }
                program = bpf_object__next_program(object, p)
            }
            // The verifier's log, for the one line we print if the kernel refuses the program.
            let rc = logBuffer.withUnsafeMutableBufferPointer { log in
                Self.load(object, log: log)
            }
            guard rc == 0 else {
                let log = String(decoding: logBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw Self.loadError(-rc, log: log)
            }
            trackedFD = bpf_map__fd(try Self.map(object, "tracked"))
            eventsFD = bpf_map__fd(ring)
            statsFD = bpf_map__fd(try Self.map(object, "stats"))
            countersFD = bpf_map__fd(try Self.map(object, "counters"))
            captureFD = bpf_map__fd(try Self.map(object, "capture"))
            inflightFD = bpf_map__fd(try Self.map(object, "inflight"))
            let bss = try Self.map(object, ".bss")
            guard bpf_map__value_size(bss) == MemoryLayout<clab_config>.size else {
                throw ClabError("trace: the BPF program's settings do not match clab's (rebuild clab)")
            }
            configFD = bpf_map__fd(bss)
        } catch {
            bpf_object__close(object)
            throw error
        }
    }

    /// The programs that hook syscalls, per mode and attach point (the names in the C file).
    static func syscallPrograms(mode: TraceMode, at point: TraceAttachPoint) -> [String] {
        let suffix = mode == .events ? "events" : "count"
        switch point {
        case .tracepoint: return ["sys_enter_", "sys_exit_"].map { $0 + suffix }
        case .fentry:
            // __secure_computing: the calls a seccomp filter refused, which skip the dispatch.
            return ["fentry_", "fexit_", "fentry32_", "fexit32_", "seccomp_"].map { $0 + suffix }
        }
    }

    deinit {
        detach()
        bpf_object__close(object)
    }

    /// The uprobe on `clab_mark` (bpf/clab_trace.bpf.c): attached by `attachMarks`, to each
    /// binary that marks (clab-init, clab), not with the rest.
    static let markProgram = "on_mark"

    /// Attaches every loaded program but the marker uprobe. From here on the kernel runs them.
    func attach() throws {
        var program = bpf_object__next_program(object, nil)
        while let p = program {
            if bpf_program__autoload(p) && String(cString: bpf_program__name(p)) != Self.markProgram {
                guard let link = bpf_program__attach(p) else {
                    let err = errno
                    let name = String(cString: bpf_program__name(p))
                    detach()
                    throw ClabError("trace: cannot attach \(name): \(errnoDescription(err))")
                }
                links.append(link)
            }
            program = bpf_object__next_program(object, p)
        }
    }

    /// Attaches the marker uprobe to `clab_mark` in `binary` (every process running it; the
    /// program writes records for traced tasks only). Returns why it could not, or nil.
    func attachMarks(binary: String) -> String? {
        guard let p = bpf_object__find_program_by_name(object, Self.markProgram), bpf_program__autoload(p) else {
            return "the marker program is not loaded (count mode)"
        }
        guard let link = clab_attach_uprobe(p, binary, "clab_mark") else {
            // libbpf's own codes (4001: not an ELF file) as libbpf words them, errno's as usual.
            let err = errno
            var text = [CChar](repeating: 0, count: 128)
            _ = libbpf_strerror(err, &text, text.count)
            let reason = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return "cannot attach a uprobe to clab_mark in \(binary): \(reason) (errno \(err))"
        }
        links.append(link)
        return nil
    }

    func detach() {
        for link in links { bpf_link__destroy(link) }
        links = []
    }

    func configure(emitProcessEvents: Bool, wakeBytes: Int) throws {
        var config = clab_config()
        config.emit_proc = emitProcessEvents ? 1 : 0
        // The BPF side tests "crossed a multiple" with a mask: a power of two (the ring's size is one).
        config.wake_bytes = UInt64(wakeBytes).nonzeroBitCount == 1 ? UInt64(wakeBytes) : 0
        var key: UInt32 = 0
        guard bpf_map_update_elem(configFD, &key, &config, UInt64(BPF_ANY)) == 0 else {
            throw ClabError("trace: cannot configure the BPF program: \(errnoDescription(errno))")
        }
    }

    /// Tells the kernel side which strings to read for which syscall (see `SyscallCatalog`),
    /// in one batch.
    func setCaptureSpecs(_ specs: [Int: UInt32]) throws {
        let entries = specs.filter { $0.key >= 0 && $0.key < Int(CLAB_MAX_SYSCALLS) }
        var keys = entries.keys.map { UInt32($0) }
        var values = keys.map { entries[Int($0)] ?? 0 }
        var count = UInt32(keys.count)
        guard count > 0 else { return }
        let rc = bpf_map_update_batch(captureFD, &keys, &values, &count, nil)
        guard rc == 0 else { throw ClabError("trace: cannot fill the capture map: \(errnoDescription(-rc))") }
    }

    /// Follows the process behind `pidfd` and, from now on, every process it forks: its tgid
    /// goes into `tracked`, its thread gets the mark in task storage. `fromExec`: only from its
    /// next execve on (a root the tracer spawned, still in the spawning code).
    func track(pidfd: Int32, pid: pid_t, fromExec: Bool = false) throws {
        var key = UInt32(pid)
        var state = fromExec ? CLAB_ARMED.rawValue : CLAB_TRACED.rawValue
        guard bpf_map_update_elem(trackedFD, &key, &state, UInt64(BPF_ANY)) == 0 else {
            throw ClabError("trace: cannot follow pid \(pid): \(errnoDescription(errno))")
        }
        try mark(pidfd: pidfd, state: state, what: "pid \(pid)")
    }

    /// Marks one thread (by a thread pidfd) traced, or not.
    func mark(pidfd: Int32, state: UInt32, what: String) throws {
        var fd = pidfd
        var value = clab_pending()
        value.state = state
        value.nr = -1
        guard bpf_map_update_elem(inflightFD, &fd, &value, UInt64(BPF_ANY)) == 0 else {
            throw ClabError("trace: cannot follow \(what): \(errnoDescription(errno))")
        }
    }

    /// Whether `pid` is in the traced set (a bpf() call: the reader leaves clab's own out).
    func isTracked(_ pid: pid_t) -> Bool {
        var key = UInt32(pid)
        var state: UInt32 = 0
        return bpf_map_lookup_elem(trackedFD, &key, &state) == 0
    }

    func untrack(_ pid: pid_t) {
        var key = UInt32(pid)
        _ = bpf_map_delete_elem(trackedFD, &key)
    }

    /// How many processes are still followed (the traced tree is done at 0).
    func trackedCount() -> Int {
        var count = 0
        var key: UInt32 = 0
        var next: UInt32 = 0
        var rc = bpf_map_get_next_key(trackedFD, nil, &next)
        while rc == 0 {
            count += 1
            key = next
            rc = bpf_map_get_next_key(trackedFD, &key, &next)
        }
        return count
    }

    /// Records lost because the ring buffer was full, summed over CPUs.
    func drops() -> UInt64 {
        perCPU(countersFD, key: 0, as: clab_counters.self).reduce(0) { $0 + $1.drops }
    }

    /// Drops the program has not yet reported in the stream (it does so before the next record
    /// that fits; at the end there may be none): count, first and last drop time.
    func pendingLost() -> (count: UInt64, firstTs: UInt64, lastTs: UInt64) {
        var key: UInt32 = 0
        var config = clab_config()
        guard bpf_map_lookup_elem(configFD, &key, &config) == 0 else { return (0, 0, 0) }
        return (config.lost_pending, config.lost_first_ts, config.lost_last_ts)
    }

    /// Count mode's totals per syscall number (a 32-bit call's: CLAB_MAX_SYSCALLS + its i386
    /// number): the whole per-CPU map in one batch.
    func stats() -> [Int: SyscallStat] {
        let cpus = Int(max(1, libbpf_num_possible_cpus()))
        let stride = (MemoryLayout<clab_syscall_stat>.size + 7) & ~7
        let entries = Int(CLAB_STATS_ENTRIES)
        var keys = [UInt32](repeating: 0, count: entries)
        var values = [UInt8](repeating: 0, count: entries * cpus * stride)
        var count = UInt32(entries)
        var next: UInt32 = 0
        let rc = values.withUnsafeMutableBytes { raw in
            bpf_map_lookup_batch(statsFD, nil, &next, &keys, raw.baseAddress, &count, nil)
        }
        // ENOENT: the whole map came back in this one batch.
        guard rc == 0 || rc == -ENOENT else { return [:] }
        var result: [Int: SyscallStat] = [:]
        values.withUnsafeBytes { raw in
            for i in 0..<Int(count) {
                var total = SyscallStat()
                for cpu in 0..<cpus {
                    let s = raw.loadUnaligned(fromByteOffset: (i * cpus + cpu) * stride, as: clab_syscall_stat.self)
                    total.count += s.count
                    total.errors += s.errors
                    total.nanoseconds += s.ns
                }
                if total.count > 0 { result[Int(keys[i])] = total }
            }
        }
        return result
    }

    private func perCPU<T>(_ fd: Int32, key: UInt32, as: T.Type) -> [T] {
        let cpus = Int(max(1, libbpf_num_possible_cpus()))
        let stride = (MemoryLayout<T>.size + 7) & ~7
        var buffer = [UInt8](repeating: 0, count: stride * cpus)
        var k = key
        let rc = buffer.withUnsafeMutableBytes { bpf_map_lookup_elem(fd, &k, $0.baseAddress) }
        guard rc == 0 else { return [] }
        return buffer.withUnsafeBytes { raw in
            (0..<cpus).map { raw.loadUnaligned(fromByteOffset: $0 * stride, as: T.self) }
        }
    }

    // MARK: - loading

    private static func map(_ object: OpaquePointer, _ name: String) throws -> OpaquePointer {
        guard let map = bpf_object__find_map_by_name(object, name) else {
            throw ClabError("trace: the BPF program has no map \(name) (rebuild clab)")
        }
        return map
    }

    /// Loads with a verifier log buffer, which libbpf takes through the open options only; so
    /// set it per program instead.
    private static func load(_ object: OpaquePointer, log: UnsafeMutableBufferPointer<CChar>) -> Int32 {
        var program = bpf_object__next_program(object, nil)
        while let p = program {
            _ = bpf_program__set_log_buf(p, log.baseAddress, log.count)
            program = bpf_object__next_program(object, p)
        }
        return bpf_object__load(object)
    }

    /// The ring buffer must be a power of two and a multiple of the page size.
    static func ringSize(_ bytes: Int) -> Int {
        var size = max(Int(getpagesize()), 1 << 16)
        while size < bytes && size < (1 << 30) { size <<= 1 }
        return size
    }

    private static func loadError(_ err: Int32, log: String) -> ClabError {
        let last = log.split(separator: "\n").suffix(3).joined(separator: " | ")
        let detail = last.isEmpty ? "" : " (verifier: \(last))"
        switch err {
        case EPERM where last.isEmpty, EACCES where last.isEmpty:
            return ClabError("trace: the kernel refused to load BPF programs (needs root with CAP_BPF and CAP_PERFMON)")
        // EACCES with a log: the verifier refused the program (not a question of privilege).
        case EINVAL, ENOTSUP, ENOENT, E2BIG, EACCES, EPERM:
            return ClabError(
                "trace: the kernel rejected the BPF program: \(errnoDescription(err))\(detail); clab trace needs BPF ring buffers (Linux 5.8+), task storage (5.11+) and tp_btf"
            )
        default:
            return ClabError("trace: loading the BPF program failed: \(errnoDescription(err))\(detail)")
        }
    }
}

/// Per-syscall totals, from the kernel's count mode or from events.
public struct SyscallStat: Sendable, Equatable {
    public var count: UInt64 = 0
    public var errors: UInt64 = 0
    public var nanoseconds: UInt64 = 0

    public init(count: UInt64 = 0, errors: UInt64 = 0, nanoseconds: UInt64 = 0) {
        self.count = count
        self.errors = errors
        self.nanoseconds = nanoseconds
    }
}
