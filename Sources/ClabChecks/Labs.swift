import ClabCore

/// The verifier of each lab, by number.
public enum LabVerifiers {
    /// Does the lab inspect a process the learner started (`--pid`), or state it can find itself?
    public static func needsPid(lab: Int) -> Bool { lab == 1 }

    /// What `clab lab check` looked at, for its heading.
    public static func subject(lab: Int, pid: Int32?) -> String {
        switch lab {
        case 11: return "namespaces \(Lab11Verifier.namespaces.joined(separator: ", "))"
        default: return pid.map { "process \($0)" } ?? ""
        }
    }

    public static func verify(lab: Int, pid: Int32?) throws -> [ProbeResult] {
        if needsPid(lab: lab), pid == nil {
            throw ClabError(
                "lab \(lab) inspects the process you started: give its host pid with --pid PID (`clab lab show \(lab)` says how to find it)",
                exitCode: 2)
        }
        if !needsPid(lab: lab), let pid {
            throw ClabError(
                "lab \(lab) finds what it checks by itself and takes no --pid (you gave \(pid)): run `clab lab check \(lab)`",
                exitCode: 2)
        }
        switch (lab, pid) {
        case (1, let pid?): return try Lab1Verifier.verify(pid: pid)
        case (11, _): return Lab11Verifier.verify()
        default: throw ClabError("lab \(lab) has no verifier yet", exitCode: 2)
        }
    }
}
