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
        print("\nRead one with `clab lesson N`; try it with `clab step N`; check it with `clab check N`.")
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
