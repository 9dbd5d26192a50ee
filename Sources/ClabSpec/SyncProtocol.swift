import ClabSys
import Glibc

/// The sync socket between clab (the parent) and the container's first process, in one place.
/// One SOCK_SEQPACKET socketpair, close-on-exec on both sides; the child has it as fd 3.
///
///     clab (Container.start, Exec)              child (CShims clab_spawn)  ->  clab-init (Init.main)
///     ----------------------------------------  -------------------------------------------------
///     socketpair, state file, cgroups made
///     clone3 ----------------------------------> reset signals, stdio 0-2, sync 3, setsid
///     writes uid/gid maps (stage 7),             (a failure: "E" step errno, exit)
///       joins cgroups and the network (beforeGo)
///     "G" ------------------------------------->  reads "G" (anything else, or EOF: exit 125)
///                                                 setgroups/setresgid/setresuid (stage 7),
///                                                 PR_SET_PDEATHSIG, execve(clab-init)
///     the spec, in chunks (SpecWire) ---------->  clab-init reads it, runs the stages' setup
///                                   <----------  "M" + one line: a stage failed (init exits)
///                                   <----------  "C": created (clab create / clab-runtime
///                                                 create), waits for "S" before execve
///     "S" (the supervisor; clab-runtime: on the bundle's exec.fifo) -->  lock-down, execve
///     EOF: the command is executing (fd 3 was close-on-exec) and clab's wait for init ends
///
/// Each message is one datagram: a failure line is never split or merged with another.
public enum SyncMessage {
    /// clab to the child: the maps are written and the cgroups joined; go on.
    public static let go = UInt8(ascii: "G")
    /// init to clab: set up and waiting for `start` (the OCI create/start split).
    public static let created = UInt8(ascii: "C")
    /// To a created init: execute the command now.
    public static let start = UInt8(ascii: "S")
    /// init to clab: "M" + one line saying what failed.
    static let message = UInt8(ascii: "M")
    /// The C child to clab: "E" + the step's letter + errno (see `InitReport.childSteps`).
    static let childError = UInt8(ascii: "E")
}

/// The wire format for init failures on the sync socket.
public enum InitReport {
    /// From init (Swift): "M" + the whole line.
    public static func encode(_ message: String) -> [UInt8] { [SyncMessage.message] + Array(message.utf8) }

    /// The C child's steps by the letter it reports (shims.c `child_fail`): the call, and the
    /// stage whose work it is when not the container's own stage (the user namespace's ids).
    static let childSteps: [Character: (call: String, stage: Int?)] = [
        "g": ("setgroups", 7), "G": ("setresgid(0, 0, 0)", 7), "U": ("setresuid(0, 0, 0)", 7),
        "P": ("prctl(PR_SET_PDEATHSIG)", nil), "S": ("setsid", nil),
        "T": ("ioctl(TIOCSCTTY) on the container's pseudo-terminal", nil),
    ]

    public static func decode(_ bytes: [UInt8], stage: Int) -> String {
        guard let kind = bytes.first else { return "stage \(stage): init failed" }
        let body = String(decoding: bytes.dropFirst(), as: UTF8.self)
        if kind == SyncMessage.message { return body }
        // From the C child: "E" + step letter + errno, before anything in Swift ran.
        let step = body.first.flatMap { childSteps[$0] } ?? ("execve(clab init)", nil)
        let err = Int32(body.dropFirst()) ?? 0
        return "stage \(step.stage ?? stage): \(step.call): \(errnoDescription(err))"
    }
}
