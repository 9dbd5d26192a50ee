import ArgumentParser
import ClabCore
import FoundationEssentials
import Glibc

/// Entry point: parse, run, and turn every error into one line on stderr.
public enum CLI {
    public static func main(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        exit(run(arguments))
    }

    /// Returns the exit status; tests call this with real argv.
    public static func run(_ arguments: [String]) -> Int32 {
        do {
            var command = try Clab.parseAsRoot(arguments)
            try command.run()
            return 0
        } catch let error as ClabError {
            printError(error.message)
            return error.exitCode
        } catch let error as ExitCode {
            return error.rawValue
        } catch {
            let code = Clab.exitCode(for: error)
            if code == .success {
                // --help and --version: ArgumentParser renders them as "errors".
                print(Clab.fullMessage(for: error))
                return 0
            }
            printError(oneLine(Clab.message(for: error)) + " (see `clab --help`)")
            return code.rawValue
        }
    }

    static func oneLine(_ message: String) -> String {
        let first = message.split(separator: "\n").first.map(String.init) ?? message
        return first.replacing("Error: ", with: "")
    }

    static func printError(_ message: String) {
        stderrLine("clab: \(message)")
    }
}

func stderrLine(_ text: String) {
    let bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "State directory (default /var/lib/clab, or $CLAB_ROOT).")
    var root: String?

    var layout: StateLayout { StateLayout.resolve(rootOption: root) }
}

public struct Clab: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "clab",
        abstract: "Build a container one kernel feature at a time, and watch each one work.",
        subcommands: [
            TourCommand.self, StepCommand.self, CheckCommand.self, StatsCommand.self, LessonsCommand.self,
            LessonCommand.self,
            PSCommand.self, DiffCommand.self, CommitCommand.self, RmCommand.self, VolumeCommand.self, ImageCommand.self,
            GCCommand.self,
            LabCommand.self, TraceCommand.self,
        ])

    public init() {}
}
