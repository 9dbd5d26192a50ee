import ArgumentParser
import ClabCore
import FoundationEssentials
import Glibc

struct LessonsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lessons", abstract: "List the stages and their lessons (✓: the stage's self-check passed).")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let lessons = try Lesson.all()
        let passed = Progress(layout: global.layout).passed()
        print("  \(pad("#", 3))\(pad("title", 30))\(pad("read", 6))\(pad("lab", 6))file")
        // Every stage, in order, then lessons beyond the stages (lesson 13 on).
        let numbers = Stage.all.map(\.number) + lessons.map(\.stage).filter { $0 > Stage.all.count }.sorted()
        for number in numbers {
            let mark = passed.contains(number) ? "✓" : " "
            let lesson = lessons.first { $0.stage == number }
            let title = lesson?.title ?? Stage.all.first { $0.number == number }?.title ?? ""
            let file = lesson.map { "lessons/" + Path.basename($0.path) } ?? "(no lesson yet)"
            let read = lesson?.minutes.map { "\($0)m" } ?? ""
            let lab = lesson?.labMinutes.map { "\($0)m" } ?? ""
            print("\(mark) \(pad("\(number)", 3))\(pad(title, 30))\(pad(read, 6))\(pad(lab, 6))\(file)")
            if let outcome = lesson?.outcome { print("      you can: \(outcome)") }
        }
        let hours = (Lesson.totalMinutes(lessons) + 30) / 60
        print("\nIn order: about \(hours) hours of lessons and labs (read: the lesson, typing along;")
        print("lab: its exercise). README.md, \"Course map\", has the same table.")
        print("Read one with `clab lesson N`; try it with `clab step N`; check it with `clab check N`.")
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
