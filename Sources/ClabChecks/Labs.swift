import ClabCore

/// The verifier of each lab, by number.
public enum LabVerifiers {
    /// Does the lab inspect a process the learner started (`--pid`), or state it can find itself?
    public static func needsPid(lab: Int) -> Bool { lab == 1 }

    /// What `clab lab check` looked at, for its heading.
    public static func subject(lab: Int, pid: Int32?, profile: String? = nil) -> String {
        switch lab {
        case 11: return "namespaces \(Lab11Verifier.namespaces.joined(separator: ", "))"
        case 12: return "the seccomp profile \(profile ?? "?")"
        default: return pid.map { "process \($0)" } ?? ""
        }
    }

    /// Does the lab prove a file the learner wrote (`--profile`)? Lab 12's seccomp profile.
    public static func needsProfile(lab: Int) -> Bool { lab == 12 }

    public static func verify(
        lab: Int, pid: Int32?, profile: String? = nil, runtime: Runtime = Runtime(layout: .resolve(rootOption: nil))
    ) throws -> [ProbeResult] {
        if needsProfile(lab: lab), profile == nil {
            throw ClabError(
                "lab \(lab) proves the seccomp profile you wrote: give it with --profile FILE (`clab lab show \(lab)` says what it must do)",
                exitCode: 2)
        }
        if !needsProfile(lab: lab), let profile {
            throw ClabError(
                "lab \(lab) takes no --profile (you gave \(profile)): run `clab lab check \(lab)`\(needsPid(lab: lab) ? " --pid PID" : "")",
                exitCode: 2)
        }
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
        case (12, _): return Lab12Verifier.verify(profile: profile ?? "", runtime: runtime)
        default: throw ClabError("lab \(lab) has no verifier yet", exitCode: 2)
        }
    }
}
