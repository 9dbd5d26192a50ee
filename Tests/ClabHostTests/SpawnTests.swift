import ClabHost
import ClabSys
import Glibc
import Testing

/// Host.spawn, the one launcher (tools, OCI hooks, the detached clab): a child gets default
/// signal handling, an empty mask and only the descriptors it was given.
@Suite("Host.spawn: one launcher")
struct SpawnTests {
    @Test func childGetsOnlyItsStdioAndNoBlockedSignals() throws {
        // A descriptor of ours without close-on-exec, and SIGALRM blocked and SIGTERM ignored
        // in this thread: the child must see none of the three.
        let leaked = open("/dev/null", O_RDONLY)
        #expect(leaked > 2)
        defer { close(leaked) }
        var alarm = sigset_t()
        sigemptyset(&alarm)
        sigaddset(&alarm, SIGALRM)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &alarm, &previous)
        let oldTerm = signal(SIGTERM, SIG_IGN)
        defer {
            signal(SIGTERM, oldTerm)
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        // The shell lists its descriptors; grep, run directly, reads its own signal state (dash
        // clears its mask when it starts, and blocks every signal while it waits for a child,
        // so a shell would show neither what it was given nor what its children get).
        let fds = try Host.run(["/bin/sh", "-c", "ls /proc/$$/fd"])
        #expect(fds.status == 0, "\(fds.output)")
        #expect(!fds.output.split(separator: "\n").contains("\(leaked)"), "\(fds.output)")
        let result = try Host.run(["/bin/grep", "-E", "^(SigBlk|SigIgn)", "/proc/self/status"])
        #expect(result.status == 0, "\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.contains("SigBlk:\t0000000000000000"), "\(lines)")
        // SIGTERM back to its default (glibc's own signals 32 and 33 are not ours to reset).
        let ignored = lines.first { $0.hasPrefix("SigIgn:") }.flatMap { UInt64($0.dropFirst(8), radix: 16) }
        #expect(ignored.map { $0 & (1 << (SIGTERM - 1)) == 0 } == true, "\(lines)")
    }

    /// A program that cannot start is one line naming it, and `closing` is closed all the same.
    @Test func aFailureNamesTheProgramAndStillClosesThePipeEnd() throws {
        let pipe = try makePipe()
        defer { close(pipe.read) }
        var before = stat()
        #expect(fstat(pipe.write, &before) == 0)
        #expect {
            try Host.spawn(
                path: "/nonexistent/tool", argv: ["tool"], environment: [], fds: [.null, .fd(pipe.write)],
                closing: pipe.write, failure: "cannot run the tool")
        } throws: { "\($0)" == "cannot run the tool: No such file or directory" }
        // The write end is closed in this process: the fd is gone, or a test running in
        // parallel has reused the number for another file. (Not "the pipe reads as ended": a
        // child another test forks meanwhile holds every fd of ours until its execve.)
        var after = stat()
        let reused = fstat(pipe.write, &after) == 0
        #expect(!reused || after.st_ino != before.st_ino || after.st_dev != before.st_dev)
    }
}
