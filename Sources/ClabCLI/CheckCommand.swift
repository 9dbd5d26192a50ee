import ArgumentParser
import ClabChecks
import ClabRuntime
import ClabSpec
import ClabSys
import FoundationEssentials

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract:
            "Self-check: run a stage-N container and prove the isolation of stages 1..N, inside and from the host.")

    @Argument(help: "The stage, 1-\(Stage.all.count).")
    var stage: String

    @Flag(help: "Print the results as JSON.")
    var json = false

    @Flag(
        help:
            "Stage 12: the escape matrix, known escape techniques tried in containers of stages 4, 7, 12 and 12 --userns host, with the layer that stopped each."
    )
    var matrix = false

    @OptionGroup var cgroups: CgroupParentOption
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let stage = try parseStage(stage)
        if matrix && stage.number != 12 {
            throw ClabError("--matrix is stage 12's check: run `clab check 12 --matrix`", exitCode: 2)
        }
        try Runtime.requireRoot()
        var runtime = Runtime(layout: global.layout)
        runtime.cgroupParent = try cgroups.resolved()
        if matrix { return try runMatrix(runtime) }
        let results = try StageProbes(runtime: runtime).run(stage: stage, log: { stderrLine("clab: \($0)") })
        let failed = results.filter { !$0.passed }.count
        if json {
            let report = CheckReport(stage: stage.number, passed: failed == 0, results: results)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(CheckReport.render(stage: stage, results: results))
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

extension CheckCommand {
    /// The escape matrix: its table (or JSON). It describes; open cells are findings, not a failure.
    func runMatrix(_ runtime: Runtime) throws {
        let runner = EscapeMatrixRunner(runtime: runtime)
        let result = try runner.run(log: { stderrLine("clab: \($0)") })
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(result.render())
        }
    }
}

struct CheckReport: Codable {
    let stage: Int
    let passed: Bool
    let results: [ProbeResult]

    static func render(stage: Stage, results: [ProbeResult]) -> String {
        var lines = [
            "clab check \(stage.number): a stage-\(stage.number) container, the properties of \(stage.number == 1 ? "stage 1" : "stages 1-\(stage.number)")"
        ]
        var current = 0
        for result in results {
            if result.stage != current {
                current = result.stage
                let title = Stage.all.first { $0.number == current }?.title ?? ""
                lines.append("stage \(current) · \(title)")
            }
            lines.append("  \(result.passed ? "✓" : "✗") \(result.property)")
            lines.append("      \(result.evidence)")
        }
        let failed = results.filter { !$0.passed }.count
        lines.append(
            failed == 0
                ? "all \(results.count) properties hold"
                : "\(failed) of \(results.count) properties do not hold: read `clab lesson \(stage.number)`")
        return lines.joined(separator: "\n")
    }
}
