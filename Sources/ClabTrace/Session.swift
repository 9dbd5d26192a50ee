import CLibBPF
import ClabSys
import Glibc
import Synchronization

/// What to do with the records: which outputs, which syscalls.
struct SessionOutputs {
    var json: JSONLinesWriter?
    var live: LiveWriter?
    /// Totals computed from the records (when `--summary` comes with other output).
    var summarize: Bool
    /// Only these syscall numbers are written (`--filter`); nil: all.
    var filter: Set<Int32>?
    /// The terminal view shows only what the lessons are about (`--step` without `--all`).
    var focus: Bool
}

/// The reader's side of a trace: turns records into process state and output. Owned by the
/// reader thread from `RingReader.start()` to `stop()`; other threads hand it roots through
/// `announce`, which is locked.
final class TraceSession {
    let table = ProcessTable()
    var phases: Phases?
    var outputs: SessionOutputs
    /// clab's own pid when it traces itself (`--step`): its bpf() calls are the tracer's own
    /// map updates, not something to teach.
    let selfPid: UInt32
    private(set) var events: UInt64 = 0
    private(set) var hidden: UInt64 = 0
    /// Records the kernel reported lost (CLAB_EV_LOST), so far.
    private(set) var lostReported: UInt64 = 0
    /// Bytes of the records read (with their ring-buffer headers): the mean record size.
    private(set) var recordBytes: UInt64 = 0
    private(set) var records: UInt64 = 0
    private(set) var stats = [SyscallStat](repeating: SyscallStat(), count: Int(CLAB_MAX_SYSCALLS))
    private let announced = Mutex<
        [(pid: pid_t, comm: String, phase: Phase, fds: [Int64: OpenFile], cwd: String?, sameRoot: Bool)]
    >([])
    private let bpfNr = Int32(SyscallCatalog.number("bpf") ?? 321)

    init(outputs: SessionOutputs, phases: Phases?, selfPid: pid_t = 0) {
        self.outputs = outputs
        self.phases = phases
        self.selfPid = UInt32(selfPid)
    }

    /// From another thread: a root the reader must know before its first record.
    func announce(pid: pid_t, comm: String, phase: Phase, fds: [Int64: OpenFile]) {
        // Read now, while it surely runs: the reader may get to it after it exited.
        let cwd = ProcessTable.link("/proc/\(pid)/cwd")
        let sameRoot = ProcessTable.sharesRoot(pid)
        announced.withLock { $0.append((pid, comm, phase, fds, cwd, sameRoot)) }
    }

    /// On the reader thread, before each batch of records.
    func takeAnnouncements() {
        let roots = announced.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for root in roots {
            table.addRoot(
                pid: root.pid, comm: root.comm, phase: root.phase, fds: root.fds, cwd: root.cwd, sameRoot: root.sameRoot
            )
        }
    }

    func handle(_ base: UnsafeRawPointer, _ size: Int) {
        recordBytes += UInt64(size) + 8
        records += 1
        // Nearly every record is a syscall's: parsed straight into its struct, not wrapped in
        // a `Record` and copied out of it again.
        if size >= RecordParser.eventSize && base.loadUnaligned(as: UInt16.self) == UInt16(CLAB_EV_SYSCALL.rawValue) {
            handle(RecordParser.syscall(base, size))
            return
        }
        switch RecordParser.parse(base, size) {
        case .syscall(let call): handle(call)
        case .process(let event): handle(event)
        case .lost(let count, let firstTs, let lastTs): lost(count, firstTs: firstTs, lastTs: lastTs)
        case .longString(let tid, let slot, let bytes): longStrings[tid, default: []].append((slot, bytes))
        case .signal(let signal): handle(signal)
        case .fds(let tid, let fds): madeFDs[tid] = fds
        case .iov(let tid, let capture): iovs[tid] = capture
        case .blob(let tid, let nr, let bytes): blobs[tid] = (nr, bytes)
        case .cmsg(let tid, let control):
            // Written after the call's iovec record: it goes with it.
            if var capture = iovs[tid], capture.nr == control.nr {
                capture.control = control
                iovs[tid] = capture
            }
        case .threadExit(let pid, let tid, let status):
            // Its marker ends with it: a thread that later gets the tid starts unmarked.
            table.process(pid).threadStages[tid] = nil
            // strace's last line for a thread (the text view only: the JSON's exit is a process's).
            if !outputs.focus {
                outputs.live?.note(table.process(pid).comm + " " + String(tid) + "  " + Self.end(status))
            }
        case .mark(let pid, let tid, let mark): phases?.mark(mark, tid: tid, in: table.process(pid))
        case .unknown: break
        }
    }

    /// Records the kernel dropped here: said where they are missing, in every output.
    func lost(_ count: UInt64, firstTs: UInt64, lastTs: UInt64) {
        guard count > 0 else { return }
        // An fds record whose call was dropped must not name another call's fds.
        madeFDs.removeAll()
        iovs.removeAll()
        blobs.removeAll()
        // A marker may be among the lost (a thread's closing one): no stage is carried on a
        // guess past a gap.
        table.forgetThreadMarks()
        lostReported += count
        outputs.json?.lost(count, firstTs: firstTs, lastTs: lastTs)
        outputs.live?.lost(count)
    }

    /// The end of a batch: what is buffered goes out.
    func flush() {
        outputs.json?.out.flush()
        outputs.live?.out.flush()
    }

    /// Strings longer than a slot, by thread, waiting for their syscall's record (the next one).
    private var longStrings: [UInt32: [(slot: Int, bytes: [UInt8])]] = [:]
    /// The fds a call made, by thread, waiting for that call's record (the next one).
    private var madeFDs: [UInt32: [MadeFD]] = [:]
    /// The iovecs of a call, by thread, waiting for that call's record (the next one).
    private var iovs: [UInt32: IOVCapture] = [:]
    /// The large struct of a call, by thread, waiting for that call's record (the next one).
    private var blobs: [UInt32: (nr: Int32, bytes: [UInt8])] = [:]
    /// Counts of 32-bit and x32 calls, by name and ABI (`getpid (i386)`): their numbers are not
    /// x86_64's.
    private var compatStats: [String: SyscallStat] = [:]

    func handle(_ call: Syscall) {
        // Most calls have nothing waiting for them: written as they are, not copied to be changed.
        if longStrings.isEmpty && madeFDs.isEmpty && iovs.isEmpty && blobs.isEmpty {
            complete(call)
            return
        }
        var call = call
        if !longStrings.isEmpty, let long = longStrings.removeValue(forKey: call.tid) {
            for (slot, bytes) in long { call.replace(slot: slot, with: bytes) }
        }
        if !madeFDs.isEmpty, let fds = madeFDs.removeValue(forKey: call.tid) { call.attach(fds) }
        if !iovs.isEmpty, let capture = iovs.removeValue(forKey: call.tid) {
            call.attach(capture)
            // Passed fds arrive only with a captured msghdr, so only this path has any to name.
            if call.iov?.control?.fds.isEmpty == false { passFDs(&call, in: table.process(call.pid)) }
        }
        if !blobs.isEmpty, let blob = blobs.removeValue(forKey: call.tid) { call.attach(blob: blob.bytes, nr: blob.nr) }
        complete(call)
    }

    /// A call with what the records before it carried attached: counted, written, applied.
    private func complete(_ call: Syscall) {
        if call.pid == selfPid && call.nr == bpfNr { return }
        let p = table.process(call.pid)
        let abi = call.abi
        if abi != p.abi {
            // strace's note when a process switches between the 64-bit, the 32-bit and the x32 ABI.
            p.abi = abi
            let mode = abi == .i386 ? "32 bit" : abi == .x32 ? "x32" : "64 bit"
            outputs.live?.note(
                p.comm + " " + String(call.tid) + "  [ Process PID=" + String(call.pid) + " runs in " + mode
                    + " mode. ]")
        }
        if abi != .x86_64 {
            if outputs.summarize {
                let key = call.name + (abi == .i386 ? " (i386)" : " (x32)")
                compatStats[key, default: SyscallStat()].count += 1
                compatStats[key, default: SyscallStat()].nanoseconds += call.noReturn ? 0 : call.duration
                if call.errno != nil { compatStats[key, default: SyscallStat()].errors += 1 }
            }
        } else if outputs.summarize, call.nr >= 0, Int(call.nr) < stats.count {
            stats[Int(call.nr)].count += 1
            stats[Int(call.nr)].nanoseconds += call.noReturn ? 0 : call.duration
            if call.errno != nil { stats[Int(call.nr)].errors += 1 }
        }
        let wanted = outputs.filter.map { $0.contains(call.nr) } ?? true
        // `end.events` counts what was written: with --filter, only the calls kept.
        if wanted { events += 1 }
        if wanted && (outputs.json != nil || outputs.live != nil) {
            // Closures written at each call, not stored: non-escaping ones cost no allocation.
            // A 32-bit or x32-only call's number means something else in x86_64's table: no stage from it.
            let label = !call.sharesX86_64 ? nil : phases?.label(call, in: p, path: { p.stagePath(of: $0) })
            let nsTid = table.nsTid(call.tid, of: p)
            // The fd-name closure holds the process unretained (the table keeps it alive): a
            // captured reference is retained and released around each argument written, which
            // showed in profiles at 600k calls a second.
            let process = Unmanaged.passUnretained(p)
            outputs.json?.syscall(
                call, entry: SyscallCatalog.entry(for: call), process: p, nsTid: nsTid,
                fdPath: { fd in process._withUnsafeGuaranteedRef { $0.path(of: fd) } }, label: label)
            if outputs.live != nil {
                if !outputs.focus || Phases.inFocus(call, label: label) {
                    outputs.live?.syscall(
                        call, process: p, nsTid: nsTid, label: label, fdPath: { p.path(of: $0) },
                        returned: {
                            if call.sharesX86_64 { table.apply(call, to: p) }
                            guard call.ret >= 0, call.sharesX86_64, returnsFD(call) else { return nil }
                            return p.fds[call.ret]?.path
                        })
                    // The table is applied (in `returned`); what this call caused comes after it.
                    if !heldMoves.isEmpty { releaseMoves(after: call) }
                    return
                } else {
                    hidden += 1
                }
            }
        } else if phases != nil && call.sharesX86_64 {
            _ = phases?.label(call, in: p, path: { p.stagePath(of: $0) })
        }
        if call.sharesX86_64 { table.apply(call, to: p) }
        if !heldMoves.isEmpty { releaseMoves(after: call) }
    }

    /// Files sent over unix sockets (SCM_RIGHTS), by inode: the path the sender's fd had, for
    /// the receiver's new fd (strace -y reads it from /proc; the receiver's table never saw it
    /// opened). Bounded: cleared when full.
    private var passedFiles: [UInt64: String] = [:]

    /// SCM_RIGHTS: a sender's fds are remembered by inode; a receiver's are named (a pipe or a
    /// socket by its inode, a file by the path its sender had) and enter its fd table.
    private func passFDs(_ call: inout Syscall, in p: TracedProcess) {
        guard var capture = call.iov, var control = capture.control, call.sharesX86_64, call.errno == nil else {
            return
        }
        if call.nr == 46 {  // sendmsg
            if passedFiles.count > 4096 { passedFiles.removeAll() }
            for made in control.fds where made.mode != 0 && made.name == nil {
                if let path = p.path(of: made.fd) { passedFiles[made.inode] = path }
            }
            return
        }
        guard call.nr == 47 else { return }  // recvmsg
        // MSG_CMSG_CLOEXEC in the call's flags makes the new fds close-on-exec.
        let cloexec = call.args[2] & 0x4000_0000 != 0
        for made in control.fds where made.mode != 0 {
            guard let name = made.name ?? passedFiles[made.inode] else { continue }
            control.names[made.fd] = name
            p.fds[made.fd] = OpenFile(path: name, cloexec: cloexec, netlink: false)
        }
        capture.control = control
        call.iov = capture
    }

    /// Moves into a cgroup happen inside the write to cgroup.procs that asks for them, so their
    /// record comes before that write's (written at its return): they wait for the call they
    /// happened in, and are written after it.
    private var heldMoves: [(ts: UInt64, event: ProcessEvent)] = []

    private func releaseMoves(after call: Syscall) {
        heldMoves.removeAll { held in
            // The call it happened in, or one that started well after it (its cause not traced).
            let inside = held.ts >= call.ts && held.ts <= call.ts &+ call.duration
            guard inside || call.ts > held.ts &+ 50_000_000 else { return false }
            write(held.event)
            return true
        }
    }

    /// What is still held, at the end of the trace.
    func flushHeld() {
        for held in heldMoves { write(held.event) }
        heldMoves.removeAll()
    }

    private func write(_ event: ProcessEvent) {
        if case .cgroup(_, let pid, _, _, _) = event {
            outputs.live?.kernelEvent(event, comm: table.processes[pid]?.comm)
        }
        outputs.json?.process(event)
    }

    /// The calls whose return value is a new fd (strace -y annotates it).
    private static let fdReturning: Set<Int32> = Set(
        [
            "open", "openat", "openat2", "creat", "dup", "dup2", "dup3", "socket", "accept", "accept4", "eventfd",
            "eventfd2", "epoll_create", "epoll_create1", "memfd_create", "pidfd_open", "signalfd4", "timerfd_create",
            "inotify_init1", "open_tree", "fsopen", "fsmount", "fspick",
        ].compactMap { SyscallCatalog.number($0).map(Int32.init) })

    private func returnsFD(_ call: Syscall) -> Bool {
        if call.nr == 72 { return call.args[1] == 0 || call.args[1] == 1030 }  // fcntl F_DUPFD, F_DUPFD_CLOEXEC
        return Self.fdReturning.contains(call.nr)
    }

    func handle(_ signal: SignalDelivery) {
        let p = table.process(signal.pid)
        let text = "--- " + Flags.signal(UInt64(signal.signal)) + " " + Decoder.siginfo(signal) + " ---"
        // The stage view (--step without --all) shows what the lessons are about: not these.
        if !outputs.focus { outputs.live?.note(p.comm + " " + String(signal.tid) + "  " + text) }
        outputs.json?.signal(signal, text: text)
    }

    func handle(_ event: ProcessEvent) {
        switch event {
        case .exec(_, let pid, _, _, _, _):
            let p = table.process(pid)
            p.phase = p.phase.afterExec
            // A new program has said nothing yet: clab-init's first marker comes after its start-up.
            p.label = nil
        case .oom(_, let pid, _, _):
            outputs.live?.kernelEvent(event, comm: table.processes[pid]?.comm)
        case .cgroup(let ts, _, _, _, _):
            table.apply(event)
            heldMoves.append((ts, event))
            return
        case .exit(_, let pid, let status, let comm):
            // strace's last line for a process.
            if !outputs.focus { outputs.live?.note(comm + " " + String(pid) + "  " + Self.end(status)) }
        default:
            break
        }
        table.apply(event)
        outputs.json?.process(event)
    }

    /// `+++ exited with 3 +++`, `+++ killed by SIGKILL +++`: a wait status as strace ends a thread.
    static func end(_ status: Int32) -> String {
        let signal = status & 0x7F
        return signal == 0
            ? "+++ exited with \((status >> 8) & 0xFF) +++"
            : "+++ killed by " + Flags.signal(UInt64(signal)) + (status & 0x80 != 0 ? " (core dumped) +++" : " +++")
    }

    /// Totals by syscall name, from the records.
    var statsByName: [String: SyscallStat] {
        var result: [String: SyscallStat] = [:]
        for (nr, s) in stats.enumerated() where s.count > 0 { result[SyscallCatalog.name(nr)] = s }
        for (name, s) in compatStats { result[name] = s }
        return result
    }
}

/// The two threads that empty the ring buffer into a `TraceSession`.
///
/// The ring thread only copies records out of the kernel's ring buffer into `RecordQueue`
/// chunks (a memcpy each), so the ring is freed as fast as the kernel fills it; the decode
/// thread turns them into output at its own pace. A burst the decoder cannot follow waits in
/// the queue (up to `RecordQueue.limit` bytes), not in the 8 MiB ring, where the kernel would
/// have to drop it. Only when the queue too is full does the ring thread wait, and the kernel
/// then drops records, counted and reported in the stream as `lost`.
///
/// The kernel side wakes the ring thread only when a good part of the buffer is waiting
/// (waking it per record would cost more than the record); it also polls every 20 ms, so the
/// live view stays live. `stop()` wakes it through an eventfd: it drains what is left, closes
/// the queue, and the decode thread finishes the queue before it exits.
final class RingReader: @unchecked Sendable {
    // @unchecked: the session is used only by the decode thread and the ring only by the ring
    // thread, between start() and stop(); stop() joins both before anyone else touches them.
    let session: TraceSession
    let queue: RecordQueue
    private let ring: OpaquePointer
    private let stopFD: Int32
    private var ringThread = pthread_t()
    private var decodeThread = pthread_t()
    private var running = false

    init(program: TraceProgram, session: TraceSession) throws {
        self.session = session
        queue = RecordQueue(limit: RecordQueue.limit(ring: program.bufferBytes))
        guard let ring = ring_buffer__new(program.eventsFD, clab_sink_record, UnsafeMutableRawPointer(queue.sink), nil)
        else {
            throw ClabTraceError("cannot read the ring buffer: \(String(cString: strerror(errno)))")
        }
        self.ring = ring
        stopFD = eventfd(0, Int32(EFD_CLOEXEC))
        guard stopFD >= 0 else {
            ring_buffer__free(ring)
            throw ClabTraceError("eventfd: \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        stop()
        ring_buffer__free(ring)
        close(stopFD)
    }

    /// Starts both threads; returns their thread ids (clab tracing itself leaves them out).
    func start() throws -> [pid_t] {
        let ringTid = try spawn(&ringThread) { $0.ringLoop() }
        let decodeTid: pid_t
        do {
            decodeTid = try spawn(&decodeThread) { $0.decodeLoop() }
        } catch {
            var one: UInt64 = 1
            _ = write(stopFD, &one, 8)
            pthread_join(ringThread, nil)
            throw error
        }
        running = true
        return [ringTid, decodeTid]
    }

    private func spawn(_ thread: inout pthread_t, _ body: @escaping (RingReader) -> Void) throws -> pid_t {
        guard let pipe = try? makePipe() else { throw ClabTraceError("pipe2: \(String(cString: strerror(errno)))") }
        let pipeFDs = [pipe.read, pipe.write]
        defer {
            close(pipeFDs[0])
            close(pipeFDs[1])
        }
        let box = Unmanaged.passRetained(ThreadStart(reader: self, tidFD: pipeFDs[1], body: body)).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                guard let arg else { return nil }
                let start = Unmanaged<ThreadStart>.fromOpaque(arg).takeRetainedValue()
                var tid = clab_gettid()
                _ = write(start.tidFD, &tid, MemoryLayout<pid_t>.size)
                start.body(start.reader)
                return nil
            }, box)
        guard rc == 0 else {
            Unmanaged<ThreadStart>.fromOpaque(box).release()
            throw ClabTraceError("cannot start the reader thread: \(String(cString: strerror(rc)))")
        }
        var tid: pid_t = 0
        let n = read(pipeFDs[0], &tid, MemoryLayout<pid_t>.size)
        return n == MemoryLayout<pid_t>.size ? tid : 0
    }

    /// Drains the ring buffer and the queue, and ends both threads.
    func stop() {
        guard running else { return }
        running = false
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
        pthread_join(ringThread, nil)
        pthread_join(decodeThread, nil)
    }

    private func ringLoop() {
        let epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        defer { close(epfd) }
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue
        ev.data.fd = ring_buffer__epoll_fd(ring)
        _ = epoll_ctl(epfd, EPOLL_CTL_ADD, ev.data.fd, &ev)
        ev.data.fd = stopFD
        _ = epoll_ctl(epfd, EPOLL_CTL_ADD, stopFD, &ev)
        var ready = [epoll_event](repeating: epoll_event(), count: 2)
        while true {
            let n = epoll_wait(epfd, &ready, 2, 20)
            var stopping = false
            if n > 0 { for i in 0..<Int(n) where ready[i].data.fd == stopFD { stopping = true } }
            _ = ring_buffer__consume(ring)
            // Each pass hands on what it read: the decoder writes it, and the outputs are
            // flushed, at least every 20 ms.
            queue.publish()
            if stopping { break }
        }
        _ = ring_buffer__consume(ring)
        queue.close()
    }

    private func decodeLoop() {
        while let chunk = queue.next() {
            // Roots announced before their first record was made are known before it is read.
            session.takeAnnouncements()
            chunk.eachRecord { session.handle($0, $1) }
            let more = queue.recycle(chunk)
            // A batch ends where the queue runs dry: one write per output per batch.
            if !more { session.flush() }
        }
        session.flush()
    }
}

/// Records copied out of the ring buffer, in chunks handed from the ring thread to the decode
/// thread. Each record is its size (8 bytes) and its bytes, padded to 8 (`clab_sink_record`
/// writes them, in C).
final class RecordQueue: @unchecked Sendable {
    // @unchecked: `current` and `sink` belong to the ring thread; the rest is under `lock`.
    static let chunkSize = 1 << 20

    /// Bytes the queue may hold: 32 ring buffers' worth (256 MiB for the default 8 MiB), at
    /// most 512 MiB. A burst longer than that is lost (and reported as such), not buffered
    /// without bound.
    static func limit(ring: Int) -> Int { min(512 << 20, ring * 32) }

    final class Chunk {
        let base: UnsafeMutableRawPointer
        var used = 0
        init() { base = .allocate(byteCount: RecordQueue.chunkSize, alignment: 8) }
        deinit { base.deallocate() }

        func eachRecord(_ body: (UnsafeRawPointer, Int) -> Void) {
            var offset = 0
            while offset < used {
                let size = base.load(fromByteOffset: offset, as: Int.self)
                body(UnsafeRawPointer(base + offset + 8), size)
                offset += 8 + (size + 7) & ~7
            }
        }
    }

    /// The ring thread's write position: `current`'s memory.
    let sink = UnsafeMutablePointer<clab_sink>.allocate(capacity: 1)
    private let maxChunks: Int
    private var allocated = 1
    private var current: Chunk
    private var ready: [Chunk] = []
    private var head = 0
    private var free: [Chunk] = []
    private var closed = false
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(limit: Int) {
        maxChunks = max(2, limit / Self.chunkSize)
        current = Chunk()
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
        sink.initialize(
            to: clab_sink(
                base: current.base.assumingMemoryBound(to: UInt8.self), used: 0, cap: Self.chunkSize,
                owner: nil,
                full: { owner in
                    guard let owner else { return }
                    Unmanaged<RecordQueue>.fromOpaque(owner).takeUnretainedValue().handOn(waitForRoom: true)
                }))
        sink.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        lock.deallocate()
        changed.deallocate()
        sink.deallocate()
    }

    /// On the ring thread, after each pass: what it read goes to the decoder now.
    func publish() {
        if sink.pointee.used > 0 { handOn(waitForRoom: false) }
    }

    /// Queues `current` and takes a fresh chunk: a free one, a new one while under the limit,
    /// or (when `waitForRoom`) the next one the decoder frees. Without room and without
    /// waiting, `current` stays and fills further.
    private func handOn(waitForRoom: Bool) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        while free.isEmpty && allocated >= maxChunks {
            guard waitForRoom else { return }
            pthread_cond_wait(changed, lock)
        }
        queueCurrent(fresh: free.popLast())
    }

    /// Under `lock`: `current` to the decoder, `fresh` (or a new chunk) in its place.
    private func queueCurrent(fresh: Chunk?) {
        current.used = sink.pointee.used
        ready.append(current)
        if let fresh {
            current = fresh
        } else {
            current = Chunk()
            allocated += 1
        }
        current.used = 0
        sink.pointee.base = current.base.assumingMemoryBound(to: UInt8.self)
        sink.pointee.used = 0
        pthread_cond_broadcast(changed)
    }

    /// On the ring thread, at the end: what is left goes (over the limit if need be), and the
    /// decoder stops once it is done, in the same step, so nothing is left behind.
    func close() {
        pthread_mutex_lock(lock)
        if sink.pointee.used > 0 { queueCurrent(fresh: free.popLast()) }
        closed = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(lock)
    }

    /// On the decode thread: the next chunk, waiting for one; nil once closed and empty.
    func next() -> Chunk? {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        while head == ready.count && !closed { pthread_cond_wait(changed, lock) }
        guard head < ready.count else { return nil }
        let chunk = ready[head]
        head += 1
        if head == ready.count {
            ready.removeAll(keepingCapacity: true)
            head = 0
        }
        return chunk
    }

    /// On the decode thread: a chunk read is free again. Returns whether more are waiting.
    func recycle(_ chunk: Chunk) -> Bool {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        chunk.used = 0
        free.append(chunk)
        pthread_cond_broadcast(changed)
        return head < ready.count
    }
}

private final class ThreadStart {
    let reader: RingReader
    let tidFD: Int32
    let body: (RingReader) -> Void
    init(reader: RingReader, tidFD: Int32, body: @escaping (RingReader) -> Void) {
        self.reader = reader
        self.tidFD = tidFD
        self.body = body
    }
}

/// A tracer failure, reported as one line.
func ClabTraceError(_ message: String) -> ClabError { ClabError("trace: " + message) }
