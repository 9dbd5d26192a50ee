import ArgumentParser
import ClabLessons
import ClabRuntime
import ClabSpec
import ClabSys
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
        print("  \(pad("#", 3))\(pad("title", 30))\(pad("read", 6))\(pad("lab", 6))\(pad("file", 24))exercise")
        // Every stage, in order, then lessons beyond the stages (lesson 13 on).
        let numbers = Stage.all.map(\.number) + lessons.map(\.stage).filter { $0 > Stage.all.count }.sorted()
        for number in numbers {
            let mark = done.contains(number) ? "✓" : " "
            let lesson = lessons.first { $0.stage == number }
            let title = lesson?.title ?? Stage.all.first { $0.number == number }?.title ?? ""
            let file = lesson.map { "lessons/" + Path.basename($0.path) } ?? "(no lesson yet)"
            let read = lesson?.minutes.map { "\($0)m" } ?? ""
            let labTime = lesson?.labMinutes.map { "\($0)m" } ?? ""
            let lab = Lab.mostSpecific(labs, covering: number).map { "lab \($0.number)" } ?? "no lab yet"
            print(
                "\(mark) \(pad("\(number)", 3))\(pad(title, 30))\(pad(read, 6))\(pad(labTime, 6))\(pad(file, 24))\(lab)"
            )
            if let outcome = lesson?.outcome { print("      you can: \(outcome)") }
        }
        let hours = (Lesson.totalMinutes(lessons) + 30) / 60
        print("\nIn order: about \(hours) hours of lessons and labs (read: the lesson, typing along;")
        print("lab: its exercise). README.md, \"Course map\", has the same table.")
        print(
            "Read one with `clab lesson N`; try it with `clab step N`; do its lab (`clab lab show N`): a lab's pass marks its lessons ✓ (`clab progress`)."
        )
    }
}

struct LessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lesson", abstract: "Read a lesson in the terminal.")

    @Argument(help: "The stage, 1-\(Stage.all.count), or a lesson after the stages (13).")
    var stage: String

    func run() throws {
        // A lesson after the stages has no stage: look it up by its number first.
        let after = Int(stage).flatMap { n in n > Stage.all.count ? try? Lesson.numbered(n) : nil }
        let lesson = try after ?? Lesson.numbered(try parseStage(stage).number)
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
        // Every stage, then the lessons after the stages (lesson 13 on): a lab's `stages:` names them too.
        let after = try Lesson.all().filter { $0.stage > Stage.all.count }.sorted { $0.stage < $1.stage }
        let lessons = Stage.all.map { ($0.number, $0.title) } + after.map { ($0.stage, $0.title) }
        let rows = lessons.map { number, title -> Row in
            let covering = labs.filter { $0.stageNumbers.contains(number) }
            let passed = covering.map { progress.record($0.number) }.filter(\.passed)
            return Row(
                stage: number, title: title,
                lab: (passed.first?.lab ?? Lab.mostSpecific(covering, covering: number)?.number),
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
