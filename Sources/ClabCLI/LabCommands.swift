import ArgumentParser
import ClabChecks
import ClabHost
import ClabLessons
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab", abstract: "Classroom exercises and their verifiers.",
        subcommands: [LabList.self, LabShow.self, LabHint.self, LabSolution.self, LabCheck.self])
}

struct LabList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the labs.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let progress = LabProgress(layout: global.layout)
        for lab in try Lab.all() {
            let mark = progress.record(lab.number).passed ? "✓" : " "
            // "stages 13" reads wrong for lesson 13, which has no stage: name lessons.
            let covers = lab.stageNumbers.count == 1 ? "lesson \(lab.stages)" : "lessons \(lab.stages)"
            print("\(mark) \(pad("\(lab.number)", 4))\(pad(lab.title, 36))\(covers)")
        }
        print(
            "\nRead one with `clab lab show N`, a hint at a time with `clab lab hint N`; check your work with `clab lab check N`."
        )
    }
}

/// The task alone: the hints are revealed one at a time by `clab lab hint`.
struct LabShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Read a lab's task (no hints).")

    @Argument(help: "The lab number.")
    var lab: Int

    func run() throws {
        let lab = try Lab.numbered(lab)
        let count = lab.hints.count
        let footer =
            "\n\n---\n\(count == 0 ? "This lab has no hints." : "Stuck? `clab lab hint \(lab.number)` shows hint 1 of \(count), one at a time.") "
            + "Check your work with `clab lab check \(lab.number)\(LabVerifiers.argumentsUsage(lab: lab.number))`."
        print(render(lab.task + footer))
    }
}

/// The next hint, remembered per state root (`<root>/progress/lab-N.json`).
struct LabHint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hint", abstract: "Show the next hint of a lab (one at a time; --all: the ones seen so far).")

    @Argument(help: "The lab number.")
    var lab: Int

    @Flag(help: "Show again every hint you have seen, without a new one.")
    var all = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let lab = try Lab.numbered(lab)
        let hints = lab.hints
        guard !hints.isEmpty else {
            print("Lab \(lab.number) has no hints: `clab lab show \(lab.number)` is all there is.")
            return
        }
        let progress = LabProgress(layout: global.layout)
        let seen = min(progress.record(lab.number).hintsShown, hints.count)
        if all {
            guard seen > 0 else {
                print("You have seen no hint of lab \(lab.number) yet: `clab lab hint \(lab.number)` shows the first.")
                return
            }
            for i in 0..<seen { print(render("## Hint \(i + 1) of \(hints.count)\n\n\(hints[i])\n")) }
            return
        }
        guard seen < hints.count else {
            print(
                "You have seen all \(hints.count) hints of lab \(lab.number) (`clab lab hint \(lab.number) --all` shows them again)."
            )
            print("The reference solution: `clab lab solution \(lab.number)`, after a confirmation.")
            return
        }
        try progress.update(lab.number) { $0.hintsShown = seen + 1 }
        let next =
            seen + 1 < hints.count
            ? "Next: `clab lab hint \(lab.number)` (hint \(seen + 2) of \(hints.count))."
            : "That was the last hint. The solution: `clab lab solution \(lab.number)`."
        print(render("## Hint \(seen + 1) of \(hints.count)\n\n\(hints[seen])\n\n\(next)"))
    }
}

/// The reference solution, only when asked for twice: `--yes`, or "yes" typed at a terminal.
struct LabSolution: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "solution", abstract: "Show a lab's reference solution (asks first; --yes skips the question).")

    @Argument(help: "The lab number.")
    var lab: Int

    @Flag(help: "Show it without asking.")
    var yes = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let lab = try Lab.numbered(lab)
        guard let text = FS.read(lab.solutionPath) else {
            throw ClabError("lab \(lab.number) has no reference solution (\(lab.solutionPath) is missing)")
        }
        if !yes {
            guard isatty(0) != 0 else {
                throw ClabError(
                    "the solution of lab \(lab.number) is shown only on purpose: run `clab lab solution \(lab.number) --yes`",
                    exitCode: 2)
            }
            print(
                "Lab \(lab.number)'s reference solution does the whole task. Try `clab lab hint \(lab.number)` first? Type yes to see it: ",
                terminator: "")
            fflush(nil)
            guard readLine()?.trimmed.lowercased() == "yes" else {
                print("Not shown.")
                return
            }
        }
        _ = try? LabProgress(layout: global.layout).update(lab.number) { $0.solutionShown = true }
        print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
    }
}

func render(_ markdown: String) -> String { isatty(1) != 0 ? Markdown.render(markdown) : markdown }
