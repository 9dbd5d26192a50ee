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
        for stage in Stage.all {
            let mark = passed.contains(stage.number) ? "✓" : " "
            let lesson = lessons.first { $0.stage == stage.number }
            let file = lesson.map { "lessons/" + Path.basename($0.path) } ?? "(no lesson yet)"
            print("\(mark) \(pad("\(stage.number)", 3))\(pad(stage.title, 30))\(file)")
        }
        // Lessons after the stages (13: the container lifecycle and the OCI runtime spec).
        for lesson in lessons where lesson.stage > Stage.all.count {
            print("  \(pad("\(lesson.stage)", 3))\(pad(lesson.title, 30))lessons/\(Path.basename(lesson.path))")
        }
        print("\nRead one with `clab lesson N`; try it with `clab step N`; check it with `clab check N`.")
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
