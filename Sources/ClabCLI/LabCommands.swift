import ArgumentParser
import ClabChecks
import ClabCore
import FoundationEssentials
import Glibc

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab", abstract: "Classroom exercises and their verifiers.",
        subcommands: [LabList.self, LabShow.self, LabCheck.self])
}

struct LabList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the labs.")

    func run() throws {
        for lab in try Lab.all() {
            print("\(lab.number)  \(pad(lab.title, 30))stages \(lab.stages)")
        }
        print(
            "\nRead one with `clab lab show N`; check your work with `clab lab check N` (lab 1: `--pid PID`, lab 12: `--profile FILE`)."
        )
    }
}

struct LabShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Read a lab's task and hints.")

    @Argument(help: "The lab number.")
    var lab: Int

    func run() throws {
        let lab = try Lab.numbered(lab)
        print(isatty(1) != 0 ? Markdown.render(lab.readme) : lab.readme)
    }
}

struct LabCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Verify a lab from the host: inspect what you built.")

    @Argument(help: "The lab number.")
    var lab: Int

    @Option(help: "The host pid of your container's first process (labs that inspect a process: lab 1).")
    var pid: Int32?

    @Option(help: "The seccomp profile you wrote (lab 12).")
    var profile: String?

    @Flag(help: "Print the results as JSON.")
    var json = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        let lab = try Lab.numbered(lab)
        let results = try LabVerifiers.verify(
            lab: lab.number, pid: pid, profile: profile, runtime: Runtime(layout: global.layout))
        let failed = results.filter { !$0.passed }.count
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            print(
                "clab lab check \(lab.number): \(lab.title), \(LabVerifiers.subject(lab: lab.number, pid: pid, profile: profile))"
            )
            for r in results {
                print("  \(r.passed ? "✓" : "✗") \(r.property)")
                print("      \(r.evidence)")
            }
            print(
                failed == 0
                    ? "all \(results.count) properties hold: lab \(lab.number) done"
                    : "\(failed) of \(results.count) properties do not hold")
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
