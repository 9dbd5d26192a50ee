import ClabSys
import Foundation
import Glibc
import Testing

@testable import ClabHost
@testable import ClabRuntime

/// `--net container:NAME` opens the namespace of a pid read earlier from the target's state: a
/// pid that now names another process (the target ended, the pid was reused) must be refused.
@Suite("stage 11 · joining a container's network", needsRoot)
struct Stage11TestsJoinedNetwork {
    /// A child of this test: `argv` (its own pid; `unshare -n` execs in place).
    func child(_ argv: [String]) throws -> pid_t {
        var pid: pid_t = 0
        let rc = spawnWithDefaultSignals(&pid, argv, environment: [:], actions: nil)
        guard rc == 0 else { throw ClabError("posix_spawn \(argv[0]): \(rc)") }
        return pid
    }

    func reap(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    @Test func aPidNowNamingAnotherProcessIsRefused() throws {
        let me = getpid()
        let start = Host.startTime(pid: me)
        // A process in clab's own (the host's) network namespace: as if the pid had been reused.
        let host = try child(["/bin/sleep", "30"])
        defer { reap(host) }
        #expect(throws: ClabError.self) { _ = try Runtime.openJoinedNetwork(pid: host, parent: me, parentStart: start) }
        // A process with a namespace of its own, but not a child of the recorded clab.
        let other = try child(["/usr/bin/unshare", "-n", "/bin/sleep", "30"])
        defer { reap(other) }
        #expect(eventually { Host.namespaceID(pid: "\(other)", .net) != Host.namespaceID(.net) })
        #expect(throws: ClabError.self) { _ = try Runtime.openJoinedNetwork(pid: other, parent: 1, parentStart: nil) }
        // The recorded parent, alive since the recorded time, and a namespace of its own: joined.
        let fd = try Runtime.openJoinedNetwork(pid: other, parent: me, parentStart: start)
        #expect(fd >= 0)
        close(fd)
    }
}
