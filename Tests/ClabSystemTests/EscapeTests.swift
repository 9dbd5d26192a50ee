import CShims
import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Glibc
import Testing

/// A user's terminal, made by the test: clab runs on its slave side as its controlling
/// terminal (a new session, as a login shell has), the test types into and reads the master.
final class TestTerminal {
    let master: Int32
    let slave: Int32
    let slavePath: String

    init(rows: UInt16 = 30, columns: UInt16 = 100) throws {
        var slave: Int32 = -1
        master = clab_open_pty(&slave)
        guard master >= 0 else { throw SyscallError("open /dev/ptmx") }
        self.slave = slave
        slavePath = FS.readLink("/proc/self/fd/\(slave)") ?? ""
        resize(rows: rows, columns: columns)
        // The defaults of a login terminal: canonical input, echo, signals.
        var settings = termios()
        tcgetattr(slave, &settings)
        settings.c_lflag |= tcflag_t(ICANON | ECHO | ISIG)
        tcsetattr(slave, TCSANOW, &settings)
    }

    deinit {
        close(master)
        close(slave)
    }

    func resize(rows: UInt16, columns: UInt16) {
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)
    }

    /// The terminal's local modes now (raw mode clears ICANON and ECHO).
    var localModes: tcflag_t {
        var settings = termios()
        tcgetattr(slave, &settings)
        return settings.c_lflag
    }

    /// Runs clab with this terminal as stdin, stdout, stderr and controlling terminal.
    /// `typing`: after how many seconds to type what; `during`: actions on the running clab;
    /// `readPause`: seconds between reads of 4 KiB, a terminal slower than the container.
    func run(
        _ args: [String], typing: [(Double, String)] = [], during: [(Double, (pid_t) -> Void)] = [],
        timeout: Double = 20, readPause: Double = 0
    ) throws -> (status: Int32, output: String) {
        // setsid + an open without O_NOCTTY: the terminal becomes the session's controlling one.
        let script = "exec \"$0\" \"$@\" <>\(slavePath) >&0 2>&0"
        var environment = ProcessInfo.processInfo.environment
        environment["CLAB_ROOT"] = TestEnv.root
        environment["TERM"] = "xterm"
        let argv = ["/usr/bin/setsid", "-w", "/bin/sh", "-c", script, TestEnv.clab] + args
        var pid: pid_t = 0
        let rc = spawnWithDefaultSignals(&pid, argv, environment: environment, actions: nil)
        guard rc == 0 else { throw SyscallError("posix_spawn setsid", errno: rc) }
        let started = Date()
        var pendingTyping = typing
        var pendingActions = during
        var output: [UInt8] = []
        var status: Int32 = 0
        while true {
            if readPause > 0 { usleep(useconds_t(readPause * 1_000_000)) }
            var pfd = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 50) > 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
                if n > 0 { output += buffer[0..<n] }
            }
            let elapsed = Date().timeIntervalSince(started)
            while let (at, text) = pendingTyping.first, elapsed >= at {
                _ = Array(text.utf8).withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
                pendingTyping.removeFirst()
            }
            while let (at, action) = pendingActions.first, elapsed >= at {
                action(pid)
                pendingActions.removeFirst()
            }
            if waitpid(pid, &status, WNOHANG) == pid { break }
            if elapsed > timeout { kill(pid, SIGKILL) }
        }
        // What is still buffered for the master after exit.
        var pfd = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        while poll(&pfd, 1, 100) > 0 {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            output += buffer[0..<n]
        }
        return (ExitStatus(raw: status).code, String(decoding: output, as: UTF8.self))
    }

    /// Bytes waiting in the terminal's input queue: what the user's shell would read next.
    func pendingInput() -> String {
        let flags = fcntl(slave, F_GETFL)
        _ = fcntl(slave, F_SETFL, flags | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { read(slave, $0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }
}

@Suite("escapes: the container's terminal", needsRoot, .serialized)
struct TerminalEscapeTests {
    init() throws { try TestEnv.ensureImage() }

    /// TIOCSTI on /dev/tty used to type into the caller's terminal: the bytes waited in its
    /// input queue and the caller's root shell ran them after clab exited.
    @Test(arguments: [1, 4, 7])
    func tiocstiCannotTypeIntoTheCallersTerminal(stage: Int) throws {
        let terminal = try TestTerminal()
        let run = try terminal.run(["step", "\(stage)", "--quiet", "--", "tiocsti", "echo INJECTED\n"])
        #expect(run.status == 0, "\(run.output)")
        // The ioctl worked, on the container's own pseudo-terminal.
        #expect(run.output.contains("tiocsti: typed 14 bytes"), "\(run.output)")
        #expect(terminal.pendingInput() == "", "the container typed into the caller's terminal")
    }

    @Test func withoutATerminalTheContainerHasNoControllingTerminal() throws {
        let result = try clab("step", "4", "--quiet", "--", "tiocsti", "x")
        #expect(result.status == 1)
        #expect(result.stdout.contains("no controlling terminal"), "\(result.stdout)")
    }

    @Test func interactiveShellWorksAndTheTerminalIsRestored() throws {
        let terminal = try TestTerminal()
        let before = terminal.localModes
        let run = try terminal.run(
            ["step", "7", "--quiet"], typing: [(1.0, "echo sum=$((6*7)); tty; exit 3\n")])
        #expect(run.status == 3, "\(run.output)")
        #expect(run.output.contains("sum=42"), "\(run.output)")
        #expect(run.output.contains("/dev/pts/"), "the shell's terminal is a pty: \(run.output)")
        #expect(terminal.localModes == before, "raw mode left on the user's terminal")
    }

    @Test func ctrlCStillKillsAPID1ThatIgnoresIt() throws {
        let terminal = try TestTerminal()
        let before = terminal.localModes
        let run = try terminal.run(["step", "4", "--quiet", "--", "sleep", "30"], typing: [(1.0, "\u{3}")])
        #expect(run.status == 137, "\(run.output)")
        #expect(run.output.contains("ignored Ctrl-C (SIGINT)"), "\(run.output)")
        #expect(terminal.localModes == before)
    }

    /// A container that writes without pause to a terminal slower than it kept clab reading its
    /// output forever: typed keys (Ctrl-C) were never relayed, SIGTERM never escalated, and only
    /// SIGKILL ended clab, leaving the user's terminal in raw mode.
    @Test(arguments: ["Ctrl-C", "SIGTERM"])
    func aFloodingContainerCannotHoldClab(stop: String) throws {
        let terminal = try TestTerminal()
        let before = terminal.localModes
        let run = try terminal.run(
            ["step", "7", "--quiet", "--", "yes"], typing: stop == "Ctrl-C" ? [(2.0, "\u{3}")] : [],
            during: stop == "SIGTERM" ? [(2.0, { pid in kill(pid, SIGTERM) })] : [], timeout: 15, readPause: 0.01)
        let escalated = run.output.contains("Killing it with SIGKILL")  // (the output is megabytes of y)
        #expect(escalated, "clab did not act on \(stop)")
        #expect(terminal.localModes == before, "raw mode left on the user's terminal")
    }

    @Test func ctrlCAtAShellPromptDoesNotKillTheShell() throws {
        let terminal = try TestTerminal()
        let run = try terminal.run(
            ["step", "4", "--quiet"], typing: [(1.0, "\u{3}"), (2.5, "echo still here; exit 0\n")])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("still here"), "\(run.output)")
    }

    @Test func windowSizeChangesReachTheContainer() throws {
        let terminal = try TestTerminal(rows: 30, columns: 100)
        let run = try terminal.run(
            ["step", "7", "--quiet", "--", "sh", "-c", "stty size; sleep 2; stty size"],
            during: [
                (
                    1.0,
                    { pid in
                        terminal.resize(rows: 40, columns: 120)
                        // setsid -w runs clab as its child: the window change goes to the group.
                        kill(-pid, SIGWINCH)
                        kill(pid, SIGWINCH)
                    }
                )
            ])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("30 100"), "\(run.output)")
        #expect(run.output.contains("40 120"), "\(run.output)")
    }
}

@Suite("escapes: volumes and in-root paths", needsRoot)
struct VolumeEscapeTests {
    init() throws { try TestEnv.ensureImage() }

    /// `:ro` was made inside the container's user namespace, so container root could
    /// `mount -o remount,rw,bind` it and write the host directory.
    @Test func readOnlyVolumeCannotBeRemountedWritable() throws {
        let dir = TestEnv.root + "/ro-\(ContainerSpec.newID())"
        try FS.makeDirectories(dir)
        chmod(dir, 0o777)  // writable by container root (uid 100000), so only the mount flag stops it
        defer { try? FS.removeTree(dir) }
        let result = try clab(
            "step", "10", "--quiet", "-v", "\(dir):/data:ro", "--", "sh", "-c",
            "mount -o remount,rw,bind /data; echo remount=$?; mount -o remount,bind /data 2>/dev/null; "
                + "echo defaced > /data/x; grep ' /data ' /proc/self/mountinfo")
        #expect(result.stdout.contains("remount=") && !result.stdout.contains("remount=0"), "\(result.stdout)")
        #expect(!FS.exists(dir + "/x"), "the container wrote into a read-only volume")
        #expect(result.stdout.contains("ro,nosuid,nodev"), "\(result.stdout)")
    }

    @Test func volumesAreNosuidAndStagingLeavesNothingOnTheHost() throws {
        let result = try clab(
            "step", "10", "--quiet", "-v", "stagingcheck:/v", "--", "sh", "-c", "grep ' /v ' /proc/self/mountinfo")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("rw,nosuid,nodev"), "\(result.stdout)")
        #expect(Mounts.mounts(under: TestEnv.root + "/containers").isEmpty)
        try VolumeStore(layout: TestEnv.layout).remove("stagingcheck")
    }

    /// A bind target that is a dangling symlink in the image was created from the host's root:
    /// an image with `/data -> /tmp/x` made init create /tmp/x on the host.
    @Test func danglingSymlinkTargetStaysInsideTheRoot() throws {
        let marker = "/tmp/clab-escape-\(ContainerSpec.newID())"
        let context = TestEnv.root + "/ctx-\(ContainerSpec.newID())"
        try FS.makeDirectories(context)
        defer { try? FS.removeTree(context) }
        try FS.write(
            "FROM busybox\nRUN ln -s \(marker) /data && ln -s \(marker)-dir /ddir\n", to: context + "/Clabfile")
        let tag = "dangling\(ContainerSpec.newID()):1"
        let build = try clab("image", "build", "-t", tag, context)
        #expect(build.status == 0, "\(build.stderr)")
        defer { _ = try? clab("image", "rm", tag) }
        let source = context + "/file"
        try FS.write("from the host\n", to: source)
        let result = try clab(
            "step", "10", "--quiet", "--image", tag, "-v", "\(source):/data", "-v", "danglingvol:/ddir", "--", "sh",
            "-c", "cat \(marker); ls -d \(marker)-dir")
        defer {
            unlink(marker)
            rmdir(marker + "-dir")
            _ = try? VolumeStore(layout: TestEnv.layout).remove("danglingvol")
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("from the host"), "\(result.stdout)")
        #expect(!FS.exists(marker), "init created \(marker) on the host")
        #expect(!FS.exists(marker + "-dir"), "init created \(marker)-dir on the host")
    }
}
