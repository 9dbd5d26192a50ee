import ArgumentParser
import ClabHost
import ClabLessons
import ClabRuntime
import ClabSpec
import ClabSys
import Glibc

/// Parses "4" into a stage, with a message a learner can act on for "0", "99" or "x".
func parseStage(_ text: String) throws -> Stage {
    guard let n = Int(text) else {
        throw ClabError(
            "'\(text)' is not a stage number: stages go from 1 to \(Stage.all.count) (run `clab lessons` to list them)",
            exitCode: 2)
    }
    return try Stage.numbered(n)
}

struct StepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Run a command in a container built up to stage N (default: an interactive shell).",
        discussion: "Example: clab step 4 -- ps")

    @Argument(help: "The stage, 1-\(Stage.all.count).")
    var stage: String

    @Flag(help: "Do not print the stage banner.")
    var quiet = false

    @OptionGroup var container: ContainerOptions

    @OptionGroup var global: GlobalOptions

    @Argument(parsing: .postTerminator, help: "The command to run, after --.")
    var command: [String] = []

    /// The same request as plain values: what `run` executes, and what FastParse makes.
    var plain: StepRequest {
        StepRequest(stage: stage, quiet: quiet, container: container.arguments, root: global.root, command: command)
    }

    func request() throws -> RunRequest { try plain.request() }

    func run() throws { try plain.run() }
}

/// `clab step` as plain values (no ArgumentParser property wrappers, whose construction costs
/// runtime type lookups): built from StepCommand, or directly by FastParse on the hot path.
struct StepRequest: Sendable {
    var stage: String
    var quiet: Bool
    var container: ContainerArguments
    var root: String?
    var command: [String]

    func request() throws -> RunRequest {
        try container.request(stage: try parseStage(stage), command: command)
    }

    func run() throws {
        let request = try request()
        try Runtime.requireRoot()
        var runtime = Runtime(layout: StateLayout.resolve(rootOption: root))
        runtime.cgroupParent = try CgroupParentOption.environment()
        let prepared = try runtime.prepare(request, log: { if !quiet { stderrLine("clab: \($0)") } })
        for note in prepared.notes { stderrLine("clab: " + note) }
        if !quiet { stderrLine(Banner.text(for: prepared)) }
        let result = try runtime.run(prepared, forwardSignals: true) { signal in
            let name = signal == SIGINT ? "Ctrl-C (SIGINT)" : "signal \(signal)"
            stderrLine(
                "clab: PID 1 of the container ignored \(name): the kernel drops signals PID 1 has no handler for (lesson 3). Killing it with SIGKILL."
            )
        }
        for outcome in result.outcomes { stderrLine("clab: " + outcome) }
        if result.status.code != 0 { throw ExitCode(result.status.code) }
    }
}
