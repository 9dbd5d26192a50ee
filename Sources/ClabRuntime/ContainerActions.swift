import ClabHost
import ClabSpec
import ClabSys
import Glibc

/// What `clab stop`, `clab kill` and `clab logs` do to one container, shared with the Engine
/// API daemon (clabd): one code path for both front ends.
extension ContainerRecord {
    /// `clab start`: "S" on the created container's control FIFO (its supervisor holds the sync
    /// socket init waits on), then waits until the supervisor recorded "started" or a failure
    /// (inotify on its events file: it returns as soon as the line is written).
    public func start(layout: StateLayout) throws {
        try check(.start)
        try sendControl("S")
        // Woken by the supervisor's next line in `events` (or its end), not a poll.
        var now = self
        var lookup: (any Error)?
        _ = ContainerWatch.waitForEvents(
            dir: dir, supervisor: (state.clabPid, state.clabStartTime), milliseconds: 5000
        ) {
            do {
                now = try ContainerRecord.find(id, in: layout)
            } catch {
                lookup = error
                return true
            }
            // Done once the supervisor said how it went: init's exit alone reads as stopped a
            // moment before the supervisor writes its "failed" line, which must not be missed.
            if now.events.contains(where: { $0.name == "started" || $0.name == "failed" }) { return true }
            return now.status != .created && !now.state.managerAlive
        }
        if let lookup { throw lookup }
        if let failed = now.events.last(where: { $0.name == "failed" }) {
            throw ClabError(failed.detail, exitCode: 1)
        }
        guard now.status != .created else { throw ClabError("container \(name) did not start within 5 s") }
        // An OCI bundle's poststart hooks, now that its process runs.
        if let spec = try? now.spec(), let pid = now.state.initPid { OCIBundle.afterStart(spec, pid: pid) }
    }

    /// One message to the supervisor's control FIFO: "S" (start), "W ROWS COLS" (resize the
    /// terminal). See SupervisorProcess.
    public func sendControl(_ message: String) throws {
        let fd = open(dir + "/" + SupervisorInterface.controlName, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw ClabError("container \(name): its supervisor is not listening (\(errnoDescription(errno)))")
        }
        defer { close(fd) }
        let bytes = Array((message + "\n").utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw ClabError("container \(name): write to its control FIFO failed") }
    }

    /// `clab stop`: SIGTERM, SIGKILL after `timeout` seconds; returns once the supervisor
    /// recorded the exit and removed the host's side (a detached container).
    public func stop(timeout: Int) throws {
        try check(.stop)
        guard let pid = state.initPid else { return }
        EventLog.append(dir: dir, event: "stop", detail: "SIGTERM, SIGKILL after \(timeout) s")
        // PID 1 of a PID namespace ignores SIGTERM unless it has a handler (lesson 3).
        Self.signal(pid, startTime: state.initStartTime, SIGTERM)
        // A frozen process takes no signal until thawed (v1 not even SIGKILL): stop thaws it.
        if status == .paused { try? freezer?.thaw() }
        if !Detached.waitGone(pid, startTime: state.initStartTime, seconds: Double(timeout)) {
            EventLog.append(dir: dir, event: "kill", detail: "SIGKILL: still running after \(timeout) s")
            Self.signal(pid, startTime: state.initStartTime, SIGKILL)
            Detached.waitGone(pid, startTime: state.initStartTime, seconds: 10)
        }
        // Until the supervisor recorded the exit and removed the host's side (it then exits).
        if isDetached { Detached.waitGone(state.clabPid, startTime: state.clabStartTime, seconds: 10) }
    }

    /// `clab kill -s SIG`: the signal to the container's init.
    public func kill(signal sig: Int32) throws {
        try check(.kill)
        guard let pid = state.initPid, Self.alive(pid, startTime: state.initStartTime) else {
            throw ClabError("container \(name) is stopping: its init is gone")
        }
        EventLog.append(dir: dir, event: "kill", detail: "signal \(sig)")
        guard Self.signal(pid, startTime: state.initStartTime, sig) else {
            if errno == ESRCH { throw ClabError("container \(name) is stopping: its init is gone") }
            throw ClabError("kill \(pid): \(errnoDescription(errno))")
        }
        // SIGKILL ends a paused container too, once thawed (as `docker kill` does); other
        // signals wait, pending, for `clab unpause`.
        if sig == SIGKILL && status == .paused { try? freezer?.thaw() }
    }

    /// `clab logs [-f]`: the kept output (the rotated part first), handed to `write` chunk by
    /// chunk; with `follow`, until the container stopped and its supervisor wrote the last
    /// bytes, or until `write` throws (the reader went away).
    public func copyLog(layout: StateLayout, follow: Bool, write: ([UInt8]) throws -> Void) throws {
        guard isDetached else {
            throw ClabError("container \(name) runs in the foreground of its `clab step`: its output is there")
        }
        let path = dir + "/container.log"
        let older = open(path + CappedLog.rotatedSuffix, O_RDONLY | O_CLOEXEC)
        var fd = open(path, O_RDONLY | O_CLOEXEC)
        // Between a rotation's rename and its new file there is no container.log for a moment.
        for _ in 0..<20 where fd < 0 && errno == ENOENT && FS.exists(path + CappedLog.rotatedSuffix) {
            usleep(5_000)
            fd = open(path, O_RDONLY | O_CLOEXEC)
        }
        guard fd >= 0 else {
            if older >= 0 { close(older) }
            throw ClabError("container \(name) has no log yet")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        /// Copies what `from` has now.
        func drain(_ from: Int32) throws {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                try write(Array(buffer[0..<n]))
            }
        }
        if older >= 0 {
            defer { close(older) }
            try drain(older)
        }
        while true {
            try drain(fd)
            guard follow else { return }
            // Rotated meanwhile: what was written to the old file is read above; the new one next.
            var now = stat()
            var open = stat()
            if stat(path, &now) == 0, fstat(fd, &open) == 0, now.st_ino != open.st_ino {
                try drain(fd)
                let next = Glibc.open(path, O_RDONLY | O_CLOEXEC)
                if next >= 0 {
                    close(fd)
                    fd = next
                }
                continue
            }
            // At the end: done once it stopped and its supervisor wrote the last bytes (it exits).
            let record = try? ContainerRecord.find(id, in: layout)
            if record == nil
                || (record?.status == .stopped && !Self.alive(record?.state.clabPid ?? 0, startTime: nil))
            {
                try drain(fd)
                return
            }
            // An empty write: a reader that went away makes it throw, so a follow of a quiet
            // container ends with its reader.
            try write([])
            usleep(100_000)
        }
    }
}
