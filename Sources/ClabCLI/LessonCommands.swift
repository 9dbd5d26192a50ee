import ArgumentParser
import ClabCore
import FoundationEssentials
import Glibc

struct LessonsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lessons",
        abstract: "List the stages and their lessons (✓: a lab covering the stage passed on your work).")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let lessons = try Lesson.all()
        let labs = try Lab.all()
        let done = LabProgress(layout: global.layout).doneStages(labs)
        for stage in Stage.all {
            let mark = done.contains(stage.number) ? "✓" : " "
            let lesson = lessons.first { $0.stage == stage.number }
            let file = lesson.map { "lessons/" + Path.basename($0.path) } ?? "(no lesson yet)"
            let lab = labs.first { $0.stageNumbers.contains(stage.number) }.map { "lab \($0.number)" } ?? "no lab yet"
            print("\(mark) \(pad("\(stage.number)", 3))\(pad(stage.title, 30))\(pad(file, 24))\(lab)")
        }
        print(
            "\nRead one with `clab lesson N`; try it with `clab step N`; do its lab (`clab lab show N`): a lab's pass marks its lessons ✓ (`clab progress`)."
        )
    }
}

struct LessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lesson", abstract: "Read a lesson in the terminal.")

    @Argument(help: "The stage, 1-\(Stage.all.count).")
    var stage: String

    func run() throws {
        let lesson = try Lesson.numbered(try parseStage(stage).number)
        print(isatty(1) != 0 ? Markdown.render(lesson.body) : lesson.body)
    }
}

/// What the student has proven: each lesson with the lab that covers it, passed or not, from
/// the records `clab lab check` writes in the state root.
struct ProgressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "progress",
        abstract: "Your progress: each lesson is done when its lab's verifier passed on your work.")

    @Flag(help: "Print it as JSON.")
    var json = false

    @OptionGroup var global: GlobalOptions

    struct Row: Codable {
        let stage: Int
        let title: String
        let lab: Int?
        let done: Bool
        let passedAt: String?

        enum CodingKeys: String, CodingKey {
            case stage, title, lab, done
            case passedAt = "passed_at"
        }
    }

    struct Report: Codable {
        let root: String
        let lessons: [Row]
        let labs: [LabRecord]
    }

    func run() throws {
        let labs = try Lab.all()
        let progress = LabProgress(layout: global.layout)
        let rows = Stage.all.map { stage -> Row in
            let covering = labs.filter { $0.stageNumbers.contains(stage.number) }
            let passed = covering.map { progress.record($0.number) }.filter(\.passed)
            return Row(
                stage: stage.number, title: stage.title, lab: (passed.first?.lab ?? covering.first?.number),
                done: !passed.isEmpty, passedAt: passed.compactMap(\.passedAt).min())
        }
        if json {
            print(try jsonText(Report(root: global.layout.root, lessons: rows, labs: progress.all(labs))))
            return
        }
        for row in rows {
            let lab = row.lab.map { "lab \($0)" } ?? "no lab yet"
            let state =
                row.done
                ? "passed \(row.passedAt ?? "")" : row.lab == nil ? "" : "not yet: `clab lab show \(row.lab ?? 0)`"
            print("\(row.done ? "✓" : " ") \(pad("\(row.stage)", 3))\(pad(row.title, 30))\(pad(lab, 12))\(state)")
        }
        let done = rows.filter(\.done).count
        print(
            "\n\(done) of \(rows.count) lessons done (a lesson is done when a lab covering it passed: `clab lab check N`)."
        )
    }
}
