import Glibc

/// One blocking call on a thread of its own, joined later: for a syscall that sleeps in the
/// kernel while the caller has other work. Moving a process into a cgroup v1 hierarchy waits
/// for an RCU grace period (percpu_down_write on cgroup_threadgroup_rwsem: ~10 ms on this
/// 2-core VM, off-CPU), which overlaps the network plumbing this way instead of adding to it.
final class BackgroundCall: @unchecked Sendable {
    // Written by the thread before it ends, read by `join` after pthread_join: the join orders them.
    private var failure: (any Error)?
    private var body: (() throws -> Void)?
    private var thread = pthread_t()
    private var running = false

    /// Starts `body` on a new thread; if no thread can be made, runs it here and now.
    init(_ body: @escaping () throws -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self)
        let rc = pthread_create(
            &thread, nil,
            { raw in
                guard let raw else { return nil }
                let call = Unmanaged<BackgroundCall>.fromOpaque(raw).takeRetainedValue()
                call.runBody()
                return nil
            }, box.toOpaque())
        if rc == 0 {
            running = true
        } else {
            box.release()
            runBody()
        }
    }

    private func runBody() {
        do { try body?() } catch { failure = error }
        body = nil
    }

    /// Waits for the call and rethrows its error. Once only; later calls return at once.
    func join() throws {
        if running {
            pthread_join(thread, nil)
            running = false
        }
        if let failure {
            self.failure = nil
            throw failure
        }
    }

    // Never joined (an error elsewhere came first): the thread ends on its own. The thread holds
    // a reference until its body is done, so this may run on it: detach, never join.
    deinit {
        if running { pthread_detach(thread) }
    }
}

/// Where a hook leaves its BackgroundCall for a later hook.
final class BackgroundBox: @unchecked Sendable {
    var call: BackgroundCall?
}
