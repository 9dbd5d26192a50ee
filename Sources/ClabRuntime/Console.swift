import CShims
import ClabSys
import Glibc

/// The container's own terminal: a pseudo-terminal whose slave side the container gets in
/// place of each of clab's stdin/stdout/stderr that is a terminal, and whose master side clab
/// relays to the user's terminal (what runc's console socket and `docker run -t` do).
///
/// Why: a process that shares your terminal can type into it. ioctl(TIOCSTI) pushes bytes into
/// a terminal's input queue as if you had typed them; when clab exits, your root shell reads
/// them and runs them. The container also gets its own session (setsid, in the C child), so
/// its only controlling terminal is this pseudo-terminal: TIOCSTI there types into the
/// container's own shell, and nothing reaches yours.
///
/// Pipes and files pass through untouched: `clab step 4 -- cat < in > out` sees them directly.
public final class Console {
    /// clab's side of the pseudo-terminal (non-blocking).
    private(set) var master: Int32
    /// The container's side; clab closes its copy once the container has it.
    private var slave: Int32
    /// The host fds (0, 1, 2) that are terminals: the container gets the slave in their place.
    let replaced: Set<Int32>
    /// clab's stdin, when it is a terminal: put in raw mode and relayed into the pty.
    let input: Int32?
    /// Where the pty's output goes: clab's stdout if a terminal, else stderr, else stdin.
    let output: Int32
    private var pendingInput: [UInt8] = []
    private var inputOpen: Bool
    private(set) var interruptTyped = false

    /// A console for these stdio fds, or nil when none of them is a terminal.
    public static func forStdio(_ stdio: (Int32, Int32, Int32)) throws -> Console? {
        let fds = [stdio.0, stdio.1, stdio.2]
        let ttys = Set([0, 1, 2].filter { isatty(fds[$0]) != 0 }.map { Int32($0) })
        guard let first = [Int32(0), 1, 2].first(where: { ttys.contains($0) }) else { return nil }
        var slave: Int32 = -1
        let master = clab_open_pty(&slave)
        guard master >= 0 else { throw SyscallError("open /dev/ptmx (a pseudo-terminal)") }
        // The pty starts with the user's terminal settings (erase key, size), so it feels the same.
        let user = fds[Int(first)]
        var settings = termios()
        if tcgetattr(user, &settings) == 0 { tcsetattr(slave, TCSANOW, &settings) }
        Self.copySize(from: user, to: master)
        let flags = fcntl(master, F_GETFL)
        _ = fcntl(master, F_SETFL, flags | O_NONBLOCK)
        let outputFD = [Int32(1), 2, 0].first { ttys.contains($0) } ?? first
        return Console(
            master: master, slave: slave, replaced: ttys, input: ttys.contains(0) ? fds[0] : nil,
            output: fds[Int(outputFD)])
    }

    /// `clab exec -t`: a pseudo-terminal in place of all three fds, terminals or not; the
    /// caller's stdin relayed into it only with `relayInput` (`-i`), its output to stdout.
    static func forced(_ stdio: (Int32, Int32, Int32), relayInput: Bool) throws -> Console {
        var slave: Int32 = -1
        let master = clab_open_pty(&slave)
        guard master >= 0 else { throw SyscallError("open /dev/ptmx (a pseudo-terminal)") }
        if let user = [stdio.0, stdio.1, stdio.2].first(where: { isatty($0) != 0 }) {
            var settings = termios()
            if tcgetattr(user, &settings) == 0 { tcsetattr(slave, TCSANOW, &settings) }
            Self.copySize(from: user, to: master)
        }
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
        return Console(
            master: master, slave: slave, replaced: [0, 1, 2], input: relayInput ? stdio.0 : nil, output: stdio.1)
    }

    private init(master: Int32, slave: Int32, replaced: Set<Int32>, input: Int32?, output: Int32) {
        self.master = master
        self.slave = slave
        self.replaced = replaced
        self.input = input
        self.output = output
        self.inputOpen = input != nil
    }

    deinit {
        restore()
        if slave >= 0 { close(slave) }
        close(master)
    }

    /// `clab exec -t`: the command's terminal is one of the container's own devpts (clab-init
    /// opened it there and sent its master back): relay that one instead of ours.
    func adopt(master newMaster: Int32) {
        close(master)
        master = newMaster
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
    }

    /// The container's stdio: the slave wherever clab's fd was a terminal.
    func containerStdio(_ stdio: (Int32, Int32, Int32)) -> (Int32, Int32, Int32) {
        (
            replaced.contains(0) ? slave : stdio.0, replaced.contains(1) ? slave : stdio.1,
            replaced.contains(2) ? slave : stdio.2
        )
    }

    /// Which of the container's fds 0..2 becomes its controlling terminal.
    var controllingFD: Int32 { [Int32(0), 1, 2].first { replaced.contains($0) } ?? 0 }

    /// In a user namespace, container root (a mapped uid) should own its terminal, as on a
    /// login; the fds it inherited work either way.
    func giveSlave(to uid: uid_t, gid: gid_t) { _ = fchown(slave, uid, gid) }

    /// After clone3: the container holds the slave; our copy would keep it open after the
    /// container is gone (no EOF, no EIO on the master).
    func closeSlave() {
        if slave >= 0 { close(slave) }
        slave = -1
    }

    /// Raw mode on the user's terminal: every key goes to the container's pty, whose own line
    /// discipline echoes, edits and turns Ctrl-C into SIGINT for the container's foreground
    /// group. Restored by `restore`, and at exit.
    func enterRawMode() {
        if let input { _ = clab_tty_raw(input) }
        clab_watch_winch()
    }

    public func restore() { clab_tty_restore() }

    /// The fds the relay waits on, with the events it wants.
    var pollFDs: [pollfd] {
        var fds = [pollfd(fd: master, events: Int16(POLLIN) | (pendingInput.isEmpty ? 0 : Int16(POLLOUT)), revents: 0)]
        if inputOpen, let input, pendingInput.isEmpty {
            fds.append(pollfd(fd: input, events: Int16(POLLIN), revents: 0))
        }
        return fds
    }

    /// One round of relaying after poll: the user's keys into the pty, its output to the user,
    /// a resized window to the pty.
    func pump(_ ready: [pollfd]) {
        if clab_winch_pending() != 0 { Self.copySize(from: output, to: master) }
        for fd in ready where fd.revents != 0 {
            if fd.fd == master {
                if fd.revents & Int16(POLLIN) != 0 { drainOutput(atMost: Self.outputPerRound) }
                if fd.revents & Int16(POLLOUT) != 0 { flushInput() }
            } else if let input, fd.fd == input {
                readInput(from: input)
            }
        }
    }

    /// How much of the container's output one round of the relay passes on. A container that
    /// writes without pause (`yes`) to a terminal slower than it keeps the pty full: reading
    /// until it is empty never ended, and clab stopped relaying keys (Ctrl-C), escalating
    /// signals and noticing the exit.
    static let outputPerRound = 64 << 10
    /// What is passed on after the container's init exited: the pty's buffer holds far less,
    /// but at stages 1-2 a background process may keep the slave open and keep writing.
    static let outputAfterExit = 1 << 20

    /// Passes on what the container wrote, at most `limit` bytes.
    func drainOutput(atMost limit: Int) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        var left = limit
        while left > 0 {
            let n = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, min($0.count, left)) }
            if n < 0 && errno == EINTR { continue }
            // EAGAIN: nothing more now; EIO: every slave is closed.
            guard n > 0 else { return }
            left -= n
            try? FS.writeAll(output, Array(buffer[0..<n]), what: "the terminal")
        }
    }

    private func readInput(from input: Int32) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
        if n < 0 && (errno == EINTR || errno == EAGAIN) { return }
        guard n > 0 else {
            inputOpen = false
            return
        }
        let bytes = Array(buffer[0..<n])
        if let intr = interruptCharacter, bytes.contains(intr) { interruptTyped = true }
        pendingInput += bytes
        flushInput()
    }

    private func flushInput() {
        while !pendingInput.isEmpty {
            let n = pendingInput.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }  // EAGAIN: the container is not reading; poll for POLLOUT
            pendingInput.removeFirst(n)
        }
    }

    /// The pty's interrupt key (Ctrl-C), when its line discipline turns it into SIGINT.
    private var interruptCharacter: UInt8? {
        var settings = termios()
        guard tcgetattr(master, &settings) == 0, settings.c_lflag & tcflag_t(ISIG) != 0 else { return nil }
        let intr = withUnsafeBytes(of: settings.c_cc) { $0[Int(VINTR)] }
        return intr == 0 ? nil : intr
    }

    /// Clears the record of a typed Ctrl-C (after clab acted on it).
    func acknowledgeInterrupt() { interruptTyped = false }

    /// The process group in the pty's foreground (host pid numbering), or -1.
    var foregroundGroup: pid_t { tcgetpgrp(master) }

    static func copySize(from terminal: Int32, to pty: Int32) {
        var size = winsize()
        if ioctl(terminal, UInt(TIOCGWINSZ), &size) == 0 { _ = ioctl(pty, UInt(TIOCSWINSZ), &size) }
    }
}
