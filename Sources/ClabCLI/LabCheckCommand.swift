import ArgumentParser
import ClabChecks
import ClabHost
import ClabLessons
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

struct LabCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a lab from the host: inspect what you built; a pass is recorded (`clab progress`).")

    @Argument(help: "The lab number.")
    var lab: Int?

    @Flag(
        help:
            "Every lab: check those that need no argument now, report the record of the others (with --json: for a class report)."
    )
    var all = false

    @Option(help: "The host pid of the process you made (labs 1, 3, 5, 7 and 8; lab 10: --pid A --pid B).")
    var pid: [Int32] = []

    @Option(help: "The seccomp profile you wrote (lab 12).")
    var profile: String?

    @Option(
        help:
            "The lab's work directory (lab 9: the overlay's layers, upper and merged; lab 10: site, data and the roots)."
    )
    var dir: String?

    @Option(help: "The registry you pushed to, HOST:PORT (lab 16).")
    var registry: String?

    @Flag(help: "Print the results as JSON.")
    var json = false

    @OptionGroup var cgroups: CgroupParentOption
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if all && lab != nil { throw ValidationError("give a lab number or --all, not both") }
        if !all && lab == nil { throw ValidationError("give a lab number (`clab lab list`), or --all") }
        if all && (!pid.isEmpty || profile != nil || dir != nil || registry != nil) {
            throw ValidationError(
                "--all checks each lab with what it finds by itself: leave out --pid, --profile, --dir and --registry")
        }
    }

    func run() throws {
        try Runtime.requireRoot()
        var runtime = Runtime(layout: global.layout)
        runtime.cgroupParent = try cgroups.resolved()
        if all { return try runAll(runtime) }
        let lab = try Lab.numbered(lab ?? 0)
        let input = LabInput(profile: profile, dir: dir, pids: pid, registry: registry)
        let results = try LabVerifiers.verify(lab: lab.number, input: input, runtime: runtime)
        let failed = results.filter { !$0.passed }
        let record = try? record(lab, results, runtime.layout)
        if json {
            let report = LabReport(lab: lab, results: results, record: record, checkedNow: true)
            print(try jsonText(report))
        } else {
            print("clab lab check \(lab.number): \(lab.title), \(LabVerifiers.subject(lab: lab.number, input: input))")
            for r in results {
                print("  \(r.passed ? "✓" : "✗") \(r.property)")
                print("      \(r.evidence)")
            }
            if failed.isEmpty {
                print("all \(results.count) properties hold: lab \(lab.number) done")
                if let record, let at = record.passedAt {
                    print("recorded: passed at \(at) (`clab progress` shows it)")
                }
            } else {
                print("\(results.count - failed.count) of \(results.count) properties hold; to fix:")
                for r in failed { print("  ✗ \(r.property): \(r.fix ?? "see the evidence above")") }
            }
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }

    /// A pass is recorded, with its evidence; a failure only counts as an attempt.
    func record(_ lab: Lab, _ results: [ProbeResult], _ layout: StateLayout) throws -> LabRecord {
        let failed = results.filter { !$0.passed }.map(\.property)
        return try LabProgress(layout: layout).recordCheck(
            lab.number, passed: failed.isEmpty,
            lines: results.map { "\($0.passed ? "✓" : "✗") \($0.property): \($0.evidence)" }, failed: failed)
    }

    /// Every lab, for a class report: a fresh check where the lab finds the work by itself,
    /// the record for labs that need an argument (a pid, a file).
    func runAll(_ runtime: Runtime) throws {
        var reports: [LabReport] = []
        for lab in try Lab.all() {
            let progress = LabProgress(layout: runtime.layout)
            if LabVerifiers.needsArgument(lab: lab.number) {
                reports.append(
                    LabReport(lab: lab, results: nil, record: progress.record(lab.number), checkedNow: false))
                continue
            }
            let results = try LabVerifiers.verify(lab: lab.number, input: LabInput(), runtime: runtime)
            let record = (try? record(lab, results, runtime.layout)) ?? progress.record(lab.number)
            reports.append(LabReport(lab: lab, results: results, record: record, checkedNow: true))
        }
        let summary = ClassReport(
            root: runtime.layout.root, host: Host.hostname, time: LabProgress.timestamp(), labs: reports)
        if json {
            print(try jsonText(summary))
            return
        }
        for r in reports {
            let state =
                r.passed
                ? "✓ passed \(r.passedAt ?? "")" : r.checkedNow ? "✗ not yet (checked now)" : "· not passed yet"
            print("\(pad("\(r.lab)", 4))\(pad(r.title, 36))\(state)")
        }
    }
}

/// One lab in `clab lab check --json` and `--all --json`.
struct LabReport: Codable {
    let lab: Int
    let title: String
    let stages: [Int]
    /// Passed now or before (the record).
    let passed: Bool
    let passedAt: String?
    let checkedNow: Bool
    let attempts: Int
    let hintsShown: Int
    let solutionShown: Bool
    let results: [ProbeResult]?
    let evidence: [String]?

    init(lab: Lab, results: [ProbeResult]?, record: LabRecord?, checkedNow: Bool) {
        self.lab = lab.number
        title = lab.title
        stages = lab.stageNumbers
        let now = results.map { !$0.isEmpty && $0.allSatisfy(\.passed) } ?? false
        passed = now || record?.passed == true
        passedAt = record?.passedAt
        self.checkedNow = checkedNow
        attempts = record?.attempts ?? 0
        hintsShown = record?.hintsShown ?? 0
        solutionShown = record?.solutionShown ?? false
        self.results = results
        evidence = record?.evidence
    }

    enum CodingKeys: String, CodingKey {
        case lab, title, stages, passed, attempts, results, evidence
        case passedAt = "passed_at"
        case checkedNow = "checked_now"
        case hintsShown = "hints_shown"
        case solutionShown = "solution_shown"
    }

}

/// Pretty, sorted JSON: what `--json` prints.
func jsonText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// `clab lab check --all --json`: one student's state root, every lab.
struct ClassReport: Codable {
    let root: String
    let host: String
    let time: String
    let labs: [LabReport]
}

/// `--cgroup-parent` for every command that makes cgroups (`CLAB_CGROUP_PARENT` when not given):
/// on a shared host, each student's containers go beneath a cgroup of their own.
struct CgroupParentOption: ParsableArguments {
    @Option(
        name: .customLong("cgroup-parent"),
        help:
            "Parent of the containers' cgroups: relative to your own cgroup, or absolute (default clab, or $CLAB_CGROUP_PARENT)."
    )
    var cgroupParent: String?

    func resolved() throws -> String? {
        guard let parent = cgroupParent else { return try Self.environment() }
        try Self.validate(parent)
        return parent
    }

    /// `CLAB_CGROUP_PARENT`, for commands whose own --cgroup-parent is a container option.
    static func environment() throws -> String? {
        guard let parent = Env.get("CLAB_CGROUP_PARENT"), !parent.isEmpty else {
            return nil
        }
        try validate(parent)
        return parent
    }

    static func validate(_ parent: String) throws {
        if parent.split(separator: "/").contains("..") {
            throw ClabError("--cgroup-parent \(parent) must not contain '..'", exitCode: 2)
        }
        if parent.isEmpty || parent == "/" {
            throw ClabError("--cgroup-parent must name a cgroup, e.g. student1 or /students/ann", exitCode: 2)
        }
    }
}
