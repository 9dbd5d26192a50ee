import CLibBPF
import CShims
import ClabSys
import Glibc

/// What `clab trace` was asked for.
public struct TraceOptions: Sendable {
    /// JSON Lines to this file (`--json FILE`).
    public var jsonPath: String?
    /// Per-syscall totals at the end (`--summary`). Alone, they are counted in the kernel and
    /// nothing is recorded per event.
    public var summary = false
    /// Only these syscalls (`--filter a,b`).
    public var filter: [String]?
    /// Ring buffer size (`--buffer`), rounded up to a power of two.
    public var bufferBytes = 8 << 20
    /// `--step`: show every syscall on the terminal, not only what the lessons are about.
    public var all = false
    /// Where the live view and the end-of-trace lines go.
    public var outputFD: Int32 = 2

    public init() {}

    /// Count mode: the kernel keeps totals, no records at all.
    var countOnly: Bool { summary && jsonPath == nil }
    var live: Bool { jsonPath == nil && !summary }
}

/// How a trace ended.
public struct TraceReport: Sendable {
    /// The traced command's exit status, in shell terms.
    public var exitCode: Int32
    /// Records read (events mode).
    public var events: UInt64
    /// Records the ring buffer had no room for.
    public var lost: UInt64
    /// Syscalls left out of the focused terminal view.
    public var hidden: UInt64
    /// Per-syscall totals (with `--summary`).
    public var stats: [String: SyscallStat]
    /// `--step`: what the container's limits did (stage 8), one line each.
    public var outcomes: [String] = []
}

/// `clab trace`: runs a command under clab's BPF syscall tracer.
public enum Tracer {
    /// Root, BTF and BPF, said in one line when one is missing.
    public static func checkSupport() throws {
        guard geteuid() == 0 || hasTracingCapabilities() else {
            throw ClabError(
                "trace: needs root, or CAP_BPF and CAP_PERFMON: loading BPF programs takes both (try: sudo clab trace ...)"
            )
        }
        let btf = btfPath
        guard access(btf, R_OK) == 0 else {
            throw ClabError(
                "trace: needs the kernel's BTF type information, and \(btf) is missing (a kernel built with CONFIG_DEBUG_INFO_BTF=y has it)"
            )
        }
    }

    /// CAP_BPF (39) and CAP_PERFMON (38) in the effective set: all the kernel asks to load and
    /// attach the tracer's programs (a non-root user given them, e.g. by setpriv or a file
    /// capability).
    static func hasTracingCapabilities() -> Bool {
        guard let status = ProcFS.read("/proc/self/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
            let mask = UInt64(line.dropFirst(7).trimmingPrefix(while: { $0 == " " || $0 == "\t" }), radix: 16)
        else { return false }
        let needed: UInt64 = (1 << 39) | (1 << 38)
        return mask & needed == needed
    }

    /// The kernel's BTF; CLAB_TRACE_BTF points elsewhere (an extracted BTF file, or a test).
    static var btfPath: String {
        if let custom = getenv("CLAB_TRACE_BTF") { return String(cString: custom) }
        return "/sys/kernel/btf/vmlinux"
    }

    /// Traces a host command and its descendants, as `strace -f` does.
    public static func traceHost(_ command: [String], options: TraceOptions) throws -> TraceReport {
        guard let name = command.first else { throw ClabError("trace: no command to run (after --)", exitCode: 2) }
        try checkSupport()
        // SIGTERM and SIGHUP (`timeout`, a closed terminal, a service manager) end the trace
        // cleanly instead of killing clab with the JSON unwritten and the command running on
        // untraced: blocked before the reader threads start (they inherit the mask) and read
        // from a signalfd beside the command's pidfd.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGHUP)
        var savedMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &stopSignals, &savedMask)
        defer { unblock(stopSignals, restoring: savedMask) }
        let signalFD = clab_signalfd(&stopSignals)
        guard signalFD >= 0 else { throw SyscallError("signalfd") }
        defer { close(signalFD) }
        let trace = try Trace(options: options, phases: nil, selfPid: 0, mode: "host", stage: nil, command: command)
        let path = resolve(name)
        let pipe = try makePipe()
        let gate = [pipe.read, pipe.write]
        defer {
            close(gate[0])
            close(gate[1])
        }
        // Ctrl-C goes to the traced command (it shares our terminal); we report how it ended.
        let ignored = IgnoredSignals([SIGINT, SIGQUIT, SIGPIPE])
        defer { ignored.restore() }
        var pidfd: Int32 = -1
        let pid: pid_t = withCStrings(command) { argv in
            withCStrings(environment()) { envp in
                path.withCString { clab_spawn_gated($0, argv, envp, gate, &pidfd) }
            }
        }
        guard pid > 0 else {
            throw ClabError("trace: cannot start \(name): \(errnoDescription(-pid))")
        }
        defer { if pidfd >= 0 { close(pidfd) } }
        trace.session.announce(pid: pid, comm: "clab", phase: .other, fds: ProcessTable.openFiles(of: pid))
        do {
            try trace.program.track(pidfd: pidfd, pid: pid, fromExec: true)
        } catch {
            kill(pid, SIGKILL)
            _ = ExitStatus.reap(pid)
            throw error
        }
        var go: UInt8 = 1
        _ = write(gate[1], &go, 1)
        let (status, signal) = waitForCommand(pid, pidfd: pidfd, signalFD: signalFD)
        // Stopped by a signal: the command's own children get a moment to end with it; any
        // still running then are detached (as strace leaves them), the trace ends now.
        trace.waitForTree(timeout: signal == nil ? nil : 1)
        return trace.finish(exitCode: status.code)
    }

    /// Waits for the command clab started, or for SIGTERM/SIGHUP to clab. On a signal the
    /// command gets it too, and SIGKILL if it is still there 2 s later: clab started it, so it
    /// does not outlive a trace that was told to stop (as `timeout` or a shell does with its
    /// job), whereas `--pid` leaves the processes it attached to running, as `strace -p` does.
    /// Returns the command's status and the signal, if one stopped the trace.
    static func waitForCommand(_ pid: pid_t, pidfd: Int32, signalFD: Int32) -> (ExitStatus, Int32?) {
        var fds = [
            pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let n = poll(&fds, 2, -1)
            if n < 0 && errno == EINTR { continue }
            if n < 0 || fds[0].revents != 0 { return (ExitStatus.reap(pid), nil) }
            guard fds[1].revents != 0 else { continue }
            // struct signalfd_siginfo: 128 bytes, ssi_signo first.
            var info = [UInt32](repeating: 0, count: 32)
            let got = info.withUnsafeMutableBytes { read(signalFD, $0.baseAddress, $0.count) }
            guard got >= 4 else { continue }
            let signal = Int32(bitPattern: info[0])
            kill(pid, signal)
            var exited = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
            if poll(&exited, 1, 2000) == 0 { kill(pid, SIGKILL) }
            return (ExitStatus.reap(pid), signal)
        }
    }

    /// Traces `clab step N -- CMD`: clab's own host-side setup, the cloned child, clab-init and
    /// the command, labelled by stage. The tracer does not start containers: `run` does (the
    /// runtime's run of the prepared container, from the caller), given a hook to call before
    /// "go"; it returns how the command ended and the limits that struck. `initBinary` and
    /// `hostBinary`: the executables whose `clab_mark` calls label the stages (clab-init, and
    /// clab itself, whose host side and cloned child mark theirs).
    public static func traceContainer(
        stage: Int, command: [String], initBinary: String, hostBinary: String, options: TraceOptions,
        run: (_ beforeGo: @escaping (pid_t) throws -> Void) throws -> (status: ExitStatus, outcomes: [String])
    ) throws -> TraceReport {
        try checkSupport()
        let ignored = IgnoredSignals([SIGPIPE])
        defer { ignored.restore() }
        let phases = Phases(stage: stage, command: command)
        let me = getpid()
        let trace = try Trace(
            options: options, phases: phases, selfPid: me, mode: "step", stage: stage, command: command,
            roots: [(me, "clab", .clab)], marks: [(initBinary, "clab-init's"), (hostBinary, "clab's host-side")])
        // The reader is a thread of clab too: it must not trace its own reading and writing.
        // From here every syscall of clab's threads is traced (the reader's excepted), so the
        // fork of the container's child puts it in the traced set by itself; the hook says it
        // again before "go", in case clab's own tracing were ever narrowed.
        let selfTracking = try SelfTracking(program: trace.program, except: trace.readerTids)
        let program = trace.program
        let hook: (pid_t) throws -> Void = { pid in
            // Already followed since clab's clone3 (the usual case): nothing to add, and no
            // pidfd_open/close of the tracer's own in the trace.
            if program.isTracked(pid) { return }
            let fd = clab_pidfd_open(pid, 0)
            guard fd >= 0 else { throw SyscallError("pidfd_open \(pid)") }
            defer { close(fd) }
            try program.track(pidfd: fd, pid: pid)
        }
        let result: (status: ExitStatus, outcomes: [String])
        do {
            result = try run(hook)
        } catch {
            selfTracking.stop()
            _ = trace.finish(exitCode: 1)
            throw error
        }
        selfTracking.stop()
        // Stages 1-2 have no PID namespace: the command's children may outlive it briefly.
        trace.waitForTree(timeout: 2)
        var report = trace.finish(exitCode: result.status.code)
        report.outcomes = result.outcomes
        return report
    }

    /// Follows a running process and its descendants until they have all exited, or Ctrl-C.
    public static func traceAttach(pid: pid_t, options: TraceOptions) throws -> TraceReport {
        try checkSupport()
        guard pid > 0, kill(pid, 0) == 0 else { throw ClabError("trace: --pid \(pid): no such process", exitCode: 2) }
        let ignored = IgnoredSignals([SIGPIPE])
        defer { ignored.restore() }
        // Ctrl-C and SIGTERM end the trace, not clab: blocked in every thread (the reader
        // inherits the mask) and waited for below.
        var stop = sigset_t()
        sigemptyset(&stop)
        sigaddset(&stop, SIGINT)
        sigaddset(&stop, SIGTERM)
        sigaddset(&stop, SIGHUP)
        var saved = sigset_t()
        pthread_sigmask(SIG_BLOCK, &stop, &saved)
        defer { unblock(stop, restoring: saved) }
        let tree = ProcFS.tree(of: pid)
        let trace = try Trace(
            options: options, phases: nil, selfPid: 0, mode: "attach", stage: nil, command: ProcFS.cmdline(pid),
            roots: tree.map { ($0, ProcFS.comm($0), .other) })
        // Twice: a process forked while the first pass marked its parent is caught by the second.
        var marked = Set<pid_t>()
        let roots = Set(tree)
        for _ in 0..<2 {
            for process in ProcFS.tree(of: pid) where !marked.contains(process) {
                marked.insert(process)
                try attach(process, program: trace.program)
                // Forked while the program loaded (after the first walk): no fork record will
                // name it, so its name comes from /proc as the roots' did.
                if !roots.contains(process), let comm = ProcFS.commIfRunning(process) {
                    trace.session.announce(
                        pid: process, comm: comm, phase: .other, fds: ProcessTable.openFiles(of: process))
                }
            }
        }
        var wait = timespec(tv_sec: 0, tv_nsec: 50_000_000)
        while trace.program.trackedCount() > 0 {
            // A process that exited between the /proc walk and its mark never sends the exit
            // event that would unmark it: unmark it here, or the trace would wait forever.
            for process in marked where ProcFS.isGone(process) {
                var key = UInt32(process)
                _ = bpf_map_delete_elem(trace.program.trackedFD, &key)
                marked.remove(process)
            }
            if sigtimedwait(&stop, nil, &wait) > 0 { break }
        }
        return trace.finish(exitCode: 0)
    }

    /// Restores the signal mask once the trace has ended, first taking any stop signal still
    /// pending (`timeout` signals both clab and its process group): it was for the trace, which
    /// has ended, and must not kill clab now.
    static func unblock(_ signals: sigset_t, restoring saved: sigset_t) {
        var signals = signals
        var saved = saved
        var now = timespec(tv_sec: 0, tv_nsec: 0)
        while sigtimedwait(&signals, nil, &now) > 0 {}
        pthread_sigmask(SIG_SETMASK, &saved, nil)
    }

    /// Marks every thread of a running process, through thread pidfds.
    static func attach(_ process: pid_t, program: TraceProgram) throws {
        var key = UInt32(process)
        var state = CLAB_TRACED.rawValue
        guard bpf_map_update_elem(program.trackedFD, &key, &state, UInt64(BPF_ANY)) == 0 else {
            throw ClabError("trace: cannot follow pid \(process): \(errnoDescription(errno))")
        }
        for tid in SelfTracking.threads(of: process) {
            let fd = clab_pidfd_open(tid, tid == process ? 0 : 1)
            guard fd >= 0 else { continue }  // gone already
            defer { close(fd) }
            try program.mark(pidfd: fd, state: CLAB_TRACED.rawValue, what: "thread \(tid) of pid \(process)")
        }
    }

    /// PATH lookup as strace does it, so the first traced syscall is the one execve. A name not
    /// found is executed as given, and its execve fails with ENOENT in the trace.
    static func resolve(_ name: String) -> String {
        if name.contains("/") { return name }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return name
    }

    static func environment() -> [String] {
        var result: [String] = []
        var p = environ
        while let entry = p.pointee {
            result.append(String(cString: entry))
            p += 1
        }
        return result
    }
}

/// One trace in progress: the loaded program, the reader thread, the outputs.
final class Trace {
    let program: TraceProgram
    let session: TraceSession
    let reader: RingReader?
    let options: TraceOptions
    let startNs: UInt64
    /// The reader threads, which clab's self-tracing leaves out.
    private(set) var readerTids: [pid_t] = []
    private var jsonFD: Int32 = -1
    private var finished = false

    init(
        options: TraceOptions, phases: Phases?, selfPid: pid_t, mode: String, stage: Int?, command: [String],
        roots: [(pid_t, String, Phase)] = [], marks: [(binary: String, whose: String)] = []
    ) throws {
        self.options = options
        var filter: Set<Int32>?
        if let names = options.filter {
            var numbers = Set<Int32>()
            for name in names {
                guard let nr = SyscallCatalog.number(name) else {
                    throw ClabError("trace: --filter: no syscall named '\(name)'", exitCode: 2)
                }
                numbers.insert(Int32(nr))
            }
            filter = numbers
        }
        if let path = options.jsonPath {
            // "-": standard output, so `clab trace --json - ... | jq` works.
            jsonFD =
                path == "-" ? fcntl(1, F_DUPFD_CLOEXEC, 3) : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard jsonFD >= 0 else { throw ClabError("trace: --json \(path): \(errnoDescription(errno))") }
        }
        do {
            program = try TraceProgram.attached(
                mode: options.countOnly ? .count : .events, bufferBytes: options.bufferBytes)
            startNs = Self.monotonicNow()
            var outputs = SessionOutputs(
                json: nil, live: nil, summarize: options.summary && !options.countOnly, filter: filter,
                focus: phases != nil && !options.all)
            if jsonFD >= 0 {
                let json = JSONLinesWriter(fd: jsonFD, startNs: startNs)
                json.start(
                    mode: mode, stage: stage, command: command, bufferBytes: program.bufferBytes,
                    attach: program.attachPoint)
                outputs.json = json
            }
            if options.live { outputs.live = LiveWriter(fd: options.outputFD, color: isatty(options.outputFD) != 0) }
            // clab-init and clab itself (its host side, and the C child it clones) mark each
            // stage's work with clab_mark, each binary with its own uprobe. One that cannot
            // attach costs only its own labels (clab-init's calls get one label; clab's get
            // no stage's, as no marker comes), and the user one line why.
            var phases = phases
            if phases != nil, !options.countOnly {
                var attached = Set<String>()
                for mark in marks where !attached.contains(mark.binary) {
                    if let why = program.attachMarks(binary: mark.binary) {
                        if mark.binary == marks.first?.binary { phases?.marked = false }
                        let line = "clab trace: \(mark.whose) stage labels are unavailable: \(why)\n"
                        try? FS.writeAll(2, Array(line.utf8), what: "stderr")
                    } else {
                        attached.insert(mark.binary)
                    }
                }
            }
            session = TraceSession(outputs: outputs, phases: phases, selfPid: selfPid)
            for root in roots { session.table.addRoot(pid: root.0, comm: root.1, phase: root.2) }
            if options.countOnly {
                reader = nil
            } else {
                try program.setCaptureSpecs(SyscallCatalog.captureSpecs)
                let r = try RingReader(program: program, session: session)
                readerTids = try r.start()
                reader = r
            }
            try program.configure(emitProcessEvents: !options.countOnly, wakeBytes: program.bufferBytes / 16)
        } catch {
            if jsonFD >= 0 { close(jsonFD) }
            throw error
        }
    }

    deinit { if jsonFD >= 0 { close(jsonFD) } }

    /// Waits until every traced process has exited (the kernel side removes each at its exit).
    func waitForTree(timeout: Double?) {
        let deadline = timeout.map { Self.monotonicNow() + UInt64($0 * 1e9) }
        while program.trackedCount() > 0 {
            if let deadline, Self.monotonicNow() > deadline { break }
            usleep(1000)
        }
    }

    /// Stops the reader, detaches, writes the end of every output, and reports.
    func finish(exitCode: Int32) -> TraceReport {
        program.detach()
        reader?.stop()
        session.flushHeld()
        let lost = program.drops()
        let durationNs = Self.monotonicNow() - startNs
        // Drops after the last record that fitted: reported here, at the end of the stream.
        let pending = program.pendingLost()
        if reader != nil && pending.count > 0 {
            session.lost(pending.count, firstTs: pending.firstTs, lastTs: pending.lastTs)
        }
        // The held cgroup moves and the last lost line go out before the closing line.
        session.flush()
        var stats = session.statsByName
        if options.countOnly {
            stats = [:]
            for (key, s) in program.stats() {
                // As the events mode names them: `getpid (i386)` for a 32-bit call, `getpid (x32)`.
                let max = Int(CLAB_MAX_SYSCALLS)
                let name =
                    key >= 2 * max
                    ? SyscallCatalog.nameX32(key - 2 * max) + " (x32)"
                    : key >= max ? SyscallCatalog.name32(key - max) + " (i386)" : SyscallCatalog.name(key)
                stats[name] = s
            }
        }
        if let names = options.filter { stats = stats.filter { names.contains($0.key) } }
        session.outputs.json?.end(events: session.events, lost: lost, durationNs: durationNs)
        var lines: [String] = []
        if options.summary { lines.append(SummaryTable.render(stats)) }
        var end = "clab trace: "
        end += options.countOnly ? "counted in the kernel" : "\(session.events) syscalls"
        if session.hidden > 0 { end += ", \(session.hidden) not shown (--all shows them)" }
        end += lost == 0 ? ", 0 lost" : ", " + lostHint(lost: lost, durationNs: durationNs)
        // The experimental attach point says so, on a line of its own before the closing one
        // (scripts match that one's end, "0 lost"); the default adds nothing to a transcript.
        if program.attachPoint != .tracepoint {
            lines.append("clab trace: syscalls hooked by \(program.attachPoint.hooks)")
        }
        lines.append(end)
        let text = lines.joined(separator: "\n") + "\n"
        _ = Array(text.utf8).withUnsafeBytes { write(options.outputFD, $0.baseAddress, $0.count) }
        return TraceReport(
            exitCode: exitCode, events: session.events, lost: lost, hidden: session.hidden, stats: stats)
    }

    /// What was lost, the rate that overran the buffer, and a buffer that would have held it:
    /// room for what was held (the ring and the reader's queue) plus the records that did not
    /// fit, at the mean record size seen; the smallest power of two whose ring and queue hold
    /// that.
    func lostHint(lost: UInt64, durationNs: UInt64) -> String {
        let records = session.records
        let seconds = max(Double(durationNs) / 1e9, 0.001)
        let rate = Double(records + lost) / seconds
        let mean = records > 0 ? max(64, session.recordBytes / records) : 160
        let held = UInt64(program.bufferBytes + RecordQueue.limit(ring: program.bufferBytes))
        let needed = held + lost * mean
        var size: UInt64 = 1 << 20
        while size + UInt64(RecordQueue.limit(ring: Int(size))) < needed && size <= 1 << 30 { size <<= 1 }
        let produced = "\(lost) LOST: the ring buffer was full (records came at \(Int(rate.rounded()))/s)"
        guard size <= 1 << 30 else {
            return produced + "; more than --buffer 1G would hold: trace less (--filter) or count (--summary)"
        }
        return produced + "; try --buffer \(size >> 20)M"
    }

    static func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// clab tracing itself (`--step`): every thread it has now but the reader, marked through a
/// thread pidfd (threads it starts later are marked by the kernel side at their creation).
final class SelfTracking {
    private let program: TraceProgram
    private var pidfds: [Int32] = []

    init(program: TraceProgram, except readers: [pid_t]) throws {
        self.program = program
        let me = getpid()
        var key = UInt32(me)
        var state = CLAB_TRACED.rawValue
        guard bpf_map_update_elem(program.trackedFD, &key, &state, UInt64(BPF_ANY)) == 0 else {
            throw ClabError("trace: cannot follow clab itself: \(errnoDescription(errno))")
        }
        for tid in Self.threads(of: me) where !readers.contains(tid) {
            // PIDFD_THREAD needs Linux 6.9; without it only the main thread can be marked.
            let fd = clab_pidfd_open(tid, tid == me ? 0 : 1)
            guard fd >= 0 else { continue }
            pidfds.append(fd)
            try program.mark(pidfd: fd, state: CLAB_TRACED.rawValue, what: "clab's thread \(tid)")
        }
    }

    func stop() {
        for fd in pidfds {
            try? program.mark(pidfd: fd, state: CLAB_UNTRACED.rawValue, what: "")
            close(fd)
        }
        pidfds = []
        program.untrack(getpid())
    }

    static func threads(of pid: pid_t) -> [pid_t] {
        guard let dir = opendir("/proc/\(pid)/task") else { return [pid] }
        defer { closedir(dir) }
        var result: [pid_t] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let tid = pid_t(name) { result.append(tid) }
        }
        return result
    }
}

/// Signals ignored while a trace runs: SIGINT and SIGQUIT while a traced host command has the
/// terminal (they are for it), and SIGPIPE always: a closed stderr (`clab trace ... | head`) must
/// not kill clab before it has cleaned up (a container's mounts and cgroups). Spawned children
/// reset every signal to its default.
struct IgnoredSignals {
    private var saved: [(Int32, sigaction)] = []

    init(_ signals: [Int32]) {
        for sig in signals {
            var ignore = sigaction()
            ignore.__sigaction_handler.sa_handler = SIG_IGN
            var old = sigaction()
            sigaction(sig, &ignore, &old)
            saved.append((sig, old))
        }
    }

    func restore() {
        for (sig, old) in saved {
            var action = old
            sigaction(sig, &action, nil)
        }
    }
}
