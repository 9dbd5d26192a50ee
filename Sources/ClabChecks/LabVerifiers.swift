import ClabHost
import ClabRuntime
import ClabSys
import Glibc

/// What a learner gives `clab lab check`: the pid of the process they made, the file they
/// wrote, or the directory they worked in. Each lab takes exactly what it needs.
public struct LabInput: Sendable {
    public var pid: Int32?
    public var profile: String?
    public var dir: String?
    /// Every --pid given, in order (lab 10 inspects two processes; `pid` is the first).
    public var pids: [Int32]
    /// The registry the learner pushed to (lab 16), HOST:PORT.
    public var registry: String?

    public init(
        pid: Int32? = nil, profile: String? = nil, dir: String? = nil, pids: [Int32]? = nil, registry: String? = nil
    ) {
        self.pid = pid ?? pids?.first
        self.profile = profile
        self.dir = dir
        self.registry = registry
        self.pids = pids ?? pid.map { [$0] } ?? []
    }
}

/// The verifier of each lab, by number.
public enum LabVerifiers {
    /// Labs that inspect a process the learner started (`--pid`).
    static let pidLabs: Set<Int> = [1, 3, 5, 7, 8, 10]
    /// Labs that prove a file the learner wrote (`--profile`).
    static let profileLabs: Set<Int> = [12]
    /// Labs that read a directory the learner worked in (`--dir`).
    static let dirLabs: Set<Int> = [9, 10, 14]
    /// Labs that ask a registry (`--registry`).
    static let registryLabs: Set<Int> = [16]

    public static func needsPid(lab: Int) -> Bool { pidLabs.contains(lab) }
    public static func needsProfile(lab: Int) -> Bool { profileLabs.contains(lab) }
    public static func needsDir(lab: Int) -> Bool { dirLabs.contains(lab) }
    public static func needsRegistry(lab: Int) -> Bool { registryLabs.contains(lab) }
    public static func needsArgument(lab: Int) -> Bool {
        needsPid(lab: lab) || needsProfile(lab: lab) || needsDir(lab: lab) || needsRegistry(lab: lab)
    }

    /// " --pid PID", " --profile FILE", " --dir DIR" or "": how to call `clab lab check N`.
    public static func argumentsUsage(lab: Int) -> String {
        if lab == 10 { return " --pid A --pid B --dir DIR" }
        if needsRegistry(lab: lab) { return " --registry HOST:PORT" }
        return needsPid(lab: lab)
            ? " --pid PID" : needsProfile(lab: lab) ? " --profile FILE" : needsDir(lab: lab) ? " --dir DIR" : ""
    }

    /// What `clab lab check` looked at, for its heading.
    public static func subject(lab: Int, input: LabInput) -> String {
        switch lab {
        case 6: return "namespaces \(Lab6Verifier.namespaces.joined(separator: ", "))"
        case 11: return "namespaces \(Lab11Verifier.namespaces.joined(separator: ", "))"
        case 12: return "the seccomp profile \(input.profile ?? "?")"
        case 10:
            return "processes \(input.pids.map(String.init).joined(separator: " and ")), directory \(input.dir ?? "?")"
        case 13: return "the container \(Lab13Verifier.name)"
        case 15: return "namespaces \(Lab15Verifier.namespaces.joined(separator: ", "))"
        case 16: return "\(input.registry ?? "?")/\(Lab16Verifier.repository) and the image store"
        default:
            return input.pid.map { "process \($0)" } ?? input.dir.map { "directory \($0)" } ?? ""
        }
    }

    public static func verify(
        lab: Int, pid: Int32?, profile: String? = nil, runtime: Runtime = Runtime(layout: .resolve(rootOption: nil))
    ) throws -> [ProbeResult] {
        try verify(lab: lab, input: LabInput(pid: pid, profile: profile), runtime: runtime)
    }

    public static func verify(lab: Int, input: LabInput, runtime: Runtime = Runtime(layout: .resolve(rootOption: nil)))
        throws -> [ProbeResult]
    {
        let usage = "`clab lab check \(lab)\(argumentsUsage(lab: lab))`"
        func require(_ given: Bool, _ needed: Bool, missing: String, extra: String) throws {
            if needed && !given { throw ClabError(missing, exitCode: 2) }
            if !needed && given { throw ClabError(extra, exitCode: 2) }
        }
        try require(
            input.profile != nil, needsProfile(lab: lab),
            missing:
                "lab \(lab) proves the seccomp profile you wrote: give it with --profile FILE (`clab lab show \(lab)` says what it must do)",
            extra: "lab \(lab) takes no --profile (you gave \(input.profile ?? "")): run \(usage)")
        try require(
            input.pid != nil, needsPid(lab: lab),
            missing:
                "lab \(lab) inspects the process you started: give its host pid with --pid PID (`clab lab show \(lab)` says how to find it)",
            extra: needsArgument(lab: lab)
                ? "lab \(lab) takes no --pid (you gave \(input.pid ?? 0)): run \(usage)"
                : "lab \(lab) finds what it checks by itself and takes no --pid (you gave \(input.pid ?? 0)): run \(usage)"
        )
        try require(
            input.dir != nil, needsDir(lab: lab),
            missing: "lab \(lab) reads the directory you worked in: give it with --dir DIR (`clab lab show \(lab)`)",
            extra: "lab \(lab) takes no --dir (you gave \(input.dir ?? "")): run \(usage)")
        try require(
            input.registry != nil, needsRegistry(lab: lab),
            missing:
                "lab \(lab) asks the registry you pushed to: give it with --registry HOST:PORT (e.g. --registry localhost:5000)",
            extra: "lab \(lab) takes no --registry (you gave \(input.registry ?? "")): run \(usage)")
        let wanted = lab == 10 ? 2 : needsPid(lab: lab) ? 1 : 0
        if input.pids.count > 1 && input.pids.count != wanted {
            throw ClabError(
                "lab \(lab) inspects \(wanted == 2 ? "two processes" : "one process"), you gave \(input.pids.count) --pid: run \(usage)",
                exitCode: 2)
        }
        if wanted == 2 && input.pids.count != 2 {
            throw ClabError(
                "lab \(lab) inspects your two containers: give both host pids, --pid A --pid B (`clab lab show \(lab)`)",
                exitCode: 2)
        }
        let layouts = ClabMade.layouts(runtime.layout)
        switch lab {
        case 1: return try Lab1Verifier.verify(pid: input.pid ?? 0, layouts: layouts)
        case 3: return try Lab3Verifier.verify(pid: input.pid ?? 0, layouts: layouts)
        case 5: return try Lab5Verifier.verify(pid: input.pid ?? 0, layouts: layouts)
        case 6: return Lab6Verifier.verify(layouts: layouts, initPath: runtime.initPath)
        case 7: return try Lab7Verifier.verify(pid: input.pid ?? 0, layouts: layouts)
        case 8: return try Lab8Verifier.verify(pid: input.pid ?? 0, layouts: layouts)
        case 9: return Lab9Verifier.verify(dir: input.dir ?? "", layouts: layouts)
        case 10: return try Lab10Verifier.verify(pids: input.pids, dir: input.dir ?? "", layouts: layouts)
        case 11: return Lab11Verifier.verify()
        case 14: return Lab14Verifier.verify(dir: input.dir ?? "")
        case 12: return Lab12Verifier.verify(profile: input.profile ?? "", runtime: runtime)
        case 13: return Lab13Verifier.verify(layouts: layouts)
        case 15: return Lab15Verifier.verify(layouts: layouts, initPath: runtime.initPath)
        case 16: return Lab16Verifier.verify(registry: input.registry ?? "", layouts: layouts)
        default: throw ClabError("lab \(lab) has no verifier yet", exitCode: 2)
        }
    }
}

/// A file the learner names (a tar, a trace): opened read-only, not through a symlink, without
/// blocking on a FIFO, and only if it is a regular file. The caller closes `fd`.
enum LabFile {
    static func openRegular(_ path: String) throws(ClabError) -> (fd: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw ClabError("\(path): \(errnoDescription(errno))") }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ClabError("\(path) is not a regular file")
        }
        return (fd, Int(st.st_size))
    }
}
