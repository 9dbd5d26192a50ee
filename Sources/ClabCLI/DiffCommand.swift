import ArgumentParser
import ClabRuntime

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "What a kept container changed: A added, C changed, D deleted (like docker diff).")

    @Argument(help: "The name given with --name.")
    var name: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        for entry in try KeptContainers(layout: global.layout).diff(name) { print("\(entry.kind) \(entry.path)") }
    }
}
