import ArgumentParser
import ClabRuntime
import ClabSys

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "A detached container's stdout and stderr, as its supervisor kept them.")

    @Flag(name: .shortAndLong, help: "Follow: keep printing what it writes until it stops.")
    var follow = false

    @Argument(help: "Name, id or unique id prefix.")
    var container: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        let record = try ContainerRecord.find(container, in: global.layout)
        try record.copyLog(layout: global.layout, follow: follow) { bytes in
            if !bytes.isEmpty { try FS.writeAll(1, bytes, what: "stdout") }
        }
    }
}
