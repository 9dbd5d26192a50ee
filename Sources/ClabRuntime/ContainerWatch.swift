import CShims
import ClabHost
import ClabSpec
import ClabSys
import Glibc

/// Waiting for a container's state to change without polling: the kernel wakes the waiter.
/// - A process's end: a pidfd (pidfd_open) is readable once the process exited, zombie or not.
///   A detached container's supervisor execve's `clab _cleanup` at the end (same pid), so its
///   pidfd turns readable once the exit is recorded and the host's side removed.
/// - A new line in `<dir>/events` ("started", "failed"): inotify on the file.
/// - A container directory removed: inotify on the containers directory.
/// Every wait arms the watch first, then checks the state, then sleeps: a change between the
/// check and the sleep is already queued on the watch, so none is missed.
public enum ContainerWatch {
    /// Until `pid` (the process that started at `startTime`) is gone, at most `milliseconds`
    /// (-1: no limit), or until one of `also` is readable (a client gone). True: it is gone.
    @discardableResult
    public static func waitGone(_ pid: Int32, startTime: UInt64?, milliseconds: Int, also: [Int32] = []) -> Bool {
        guard pid > 0 else { return true }
        let pidfd = clab_pidfd_open(pid)
        // ESRCH: no such process. Another error (EMFILE): checks every 10 ms instead.
        guard pidfd >= 0 else {
            if errno == ESRCH { return true }
            let deadline = EventLog.nowMilliseconds() + milliseconds
            while ContainerRecord.alive(pid, startTime: startTime) {
                if milliseconds >= 0 && EventLog.nowMilliseconds() > deadline { return false }
                if !wait(for: also, milliseconds: 10).isEmpty { return false }
            }
            return true
        }
        defer { close(pidfd) }
        // Checked after the open: a pid reused before it shows another start time.
        guard ContainerRecord.alive(pid, startTime: startTime) else { return true }
        _ = wait(for: [pidfd] + also, milliseconds: milliseconds)
        return !ContainerRecord.alive(pid, startTime: startTime)
    }

    /// Until `done()` holds, re-checked on each change of `<dir>/events`, at most
    /// `milliseconds`; the supervisor's end (`supervisor`, its pid and start time) also wakes
    /// it (then nothing more will be recorded). Returns `done()`'s last answer.
    public static func waitForEvents(
        dir: String, supervisor: (Int32, UInt64?)?, milliseconds: Int, until done: () -> Bool
    ) -> Bool {
        let watch = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        let watched = watch >= 0 && inotify_add_watch(watch, dir + "/" + EventLog.fileName, UInt32(IN_MODIFY)) >= 0
        defer { if watch >= 0 { close(watch) } }
        var pidfd: Int32 = -1
        if let (pid, startTime) = supervisor, pid > 0 {
            pidfd = clab_pidfd_open(pid)
            if pidfd >= 0 && !ContainerRecord.alive(pid, startTime: startTime) {
                close(pidfd)
                pidfd = -1
            }
        }
        defer { if pidfd >= 0 { close(pidfd) } }
        let deadline = EventLog.nowMilliseconds() + milliseconds
        while true {
            if done() { return true }
            let left = deadline - EventLog.nowMilliseconds()
            guard left > 0 else { return false }
            // Without inotify (no watch left: EMFILE, ENOSPC), a check every 10 ms, as before.
            let fds = (watched ? [watch] : []) + (pidfd >= 0 ? [pidfd] : [])
            let ready = wait(for: fds, milliseconds: watched ? left : min(left, 10))
            if ready.contains(pidfd) { return done() }
            if ready.contains(watch) { drain(watch) }
        }
    }

    /// Until `<containersDir>/<id>` is gone (`clab rm`, the daemon's `--rm`), or one of `also`
    /// is readable. True: it is gone.
    public static func waitRemoved(dir: String, also: [Int32]) -> Bool {
        let parent = Path.dirname(dir)
        let watch = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard watch >= 0 else { return !FS.exists(dir) }
        defer { close(watch) }
        let watched = inotify_add_watch(watch, parent, UInt32(IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR)) >= 0
        while FS.exists(dir) {
            let ready = wait(for: (watched ? [watch] : []) + also, milliseconds: watched ? -1 : 50)
            if ready.contains(where: { also.contains($0) }) { return !FS.exists(dir) }
            if ready.contains(watch) { drain(watch) }
        }
        return true
    }

    /// poll(2) for readability: the fds that are readable (or hung up), [] on a timeout.
    public static func wait(for fds: [Int32], milliseconds: Int) -> [Int32] {
        var set = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let deadline = EventLog.nowMilliseconds() + milliseconds
        while true {
            let left = milliseconds < 0 ? -1 : max(0, deadline - EventLog.nowMilliseconds())
            let n = poll(&set, nfds_t(set.count), Int32(clamping: left))
            if n >= 0 { return set.filter { $0.revents != 0 }.map(\.fd) }
            if errno != EINTR { return [] }
        }
    }

    /// Reads the queued inotify events (what changed is re-read from the files themselves).
    public static func drain(_ watch: Int32) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while buffer.withUnsafeMutableBytes({ read(watch, $0.baseAddress, $0.count) }) > 0 {}
    }
}
