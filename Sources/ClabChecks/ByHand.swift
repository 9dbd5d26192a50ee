import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// "By hand" labs must not pass on a container clab made. clab leaves three marks on what it
/// starts: the container's first process is a child of `clab` (clab-init execs the command in
/// place), clab puts `CLAB_STAGE` in the container's environment, and a running container has a
/// state.json naming its init pid. Any of them, on the process or an ancestor, means clab made it.
public enum ClabMade {
    /// The state roots to look in: the one in use, and the default.
    public static func layouts(_ current: StateLayout) -> [StateLayout] {
        let standard = StateLayout(root: StateLayout.defaultRoot, runDir: StateLayout.defaultRunDir)
        return current.root == standard.root ? [current] : [current, standard]
    }

    /// Why `pid` is clab's work, or nil when none of clab's marks is on it or its ancestors.
    /// A process whose environment cannot be read is not given the benefit of the doubt.
    public static func reason(pid: Int32, layouts: [StateLayout]) -> Result<Void, ClabError> {
        guard let environ = FS.read("/proc/\(pid)/environ") else {
            return .failure(ClabError("cannot read /proc/\(pid)/environ (is the process still running?)"))
        }
        if environ.split(separator: "\0").contains(where: { $0.hasPrefix("CLAB_STAGE=") }) {
            return .failure(ClabError("its environment holds CLAB_STAGE: clab started it (`clab step`)"))
        }
        let inits = Set(layouts.flatMap { ContainerState.running(in: $0) }.compactMap(\.initPid))
        var current = pid
        for _ in 0..<64 {
            if inits.contains(current) {
                return .failure(
                    ClabError(
                        current == pid
                            ? "process \(pid) is a clab container's init (its state.json names it)"
                            : "its ancestor \(current) is a clab container's init"))
            }
            let exe = Path.basename(FS.readLink("/proc/\(current)/exe") ?? "")
            let comm = (FS.read("/proc/\(current)/comm") ?? "").trimmed
            if ["clab", "clab-init"].contains(exe) || ["clab", "clab-init"].contains(comm) {
                return .failure(
                    ClabError(
                        current == pid
                            ? "process \(pid) is clab itself"
                            : "its ancestor \(current) is \(comm.isEmpty ? exe : comm): clab started it"))
            }
            guard let parent = Host.parentPid(current), parent > 1 else { break }
            current = parent
        }
        return .success(())
    }

    /// The "made by hand" property every by-hand lab starts with.
    public static let madeByHand = ProbeName(id: "made-by-hand", wording: "made by hand, not by clab")

    /// The "made by hand" property of the process `pid`.
    public static func property(pid: Int32, layouts: [StateLayout], stage: Int) -> ProbeResult {
        switch reason(pid: pid, layouts: layouts) {
        case .success:
            return ProbeResult(
                name: madeByHand, stage: stage, passed: true,
                evidence: "no clab parent, no CLAB_STAGE in its environment, no clab state names it")
        case .failure(let error):
            return ProbeResult(
                name: madeByHand, stage: stage, passed: false, evidence: error.message,
                fix: "this lab is about doing clab's work yourself: build it with the util-linux tools, not `clab step`"
            )
        }
    }
}

/// The small helper every lab verifier uses: a property with its evidence, and its one fix.
struct LabResults {
    let stage: Int
    var results: [ProbeResult] = []

    init(stage: Int) { self.stage = stage }

    /// A by-hand lab's results, starting with its first property: clab did not make the process.
    init(byHand pid: Int32, layouts: [StateLayout], stage: Int) {
        self.init(stage: stage)
        results.append(ClabMade.property(pid: pid, layouts: layouts, stage: stage))
    }

    /// "own X namespace" (id `labN.ns-own.<kind>`): the process's /proc/PID/ns link is not the
    /// host's. Returns whether it passed.
    mutating func addOwns(_ p: ProcessInspector, _ ns: Namespace, _ wording: String, fix: String) -> Bool {
        let (ok, evidence) = p.owns(ns)
        add("lab\(stage).ns-own.\(ns.rawValue)", wording, ok, evidence, fix: fix)
        return ok
    }

    mutating func add(_ name: ProbeName, _ ok: Bool, _ evidence: String, fix: String) {
        results.append(ProbeResult(name: name, stage: stage, passed: ok, evidence: evidence, fix: fix))
    }

    mutating func add(_ id: String, _ property: String, _ ok: Bool, _ evidence: String, fix: String) {
        add(ProbeName(id: id, wording: property), ok, evidence, fix: fix)
    }

    /// A property that could not be probed: a failure with its reason, never a pass.
    mutating func notChecked(_ name: ProbeName, _ why: String, fix: String) {
        add(name, false, "not checked: \(why)", fix: fix)
    }

    mutating func notChecked(_ id: String, _ property: String, _ why: String, fix: String) {
        notChecked(ProbeName(id: id, wording: property), why, fix: fix)
    }
}
