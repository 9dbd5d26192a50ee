import ArgumentParser
import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Entry point: parse, run, and turn every error into one line on stderr.
public enum CLI {
    public static func main() -> Never {
        if let message = invalidUTF8Argument(CommandLine.argc, CommandLine.unsafeArgv) {
            printError(message)
            exit(2)
        }
        exit(run(Array(CommandLine.arguments.dropFirst())))
    }

    /// Swift's CommandLine.arguments decodes argv as UTF-8 and replaces what is not with
    /// U+FFFD, so a container would silently get other bytes than the ones typed. clab passes
    /// text only, and says so; the bytes are shown escaped ("caf\xe9").
    static func invalidUTF8Argument(
        _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    ) -> String? {
        for i in 1..<max(Int(argc), 1) {
            guard let arg = argv[i] else { break }
            let bytes = UnsafeRawBufferPointer(start: arg, count: strlen(arg))
            guard String(validating: bytes, as: UTF8.self) == nil else { continue }
            let shown = bytes.map { $0 >= 0x20 && $0 < 0x7f ? String(UnicodeScalar($0)) : "\\x" + hex($0) }.joined()
            return
                "argument \(i) (\(shown)) is not valid UTF-8: clab passes text only (put other bytes in a file, e.g. on a volume)"
        }
        return nil
    }

    private static func hex(_ byte: UInt8) -> String {
        (byte < 16 ? "0" : "") + String(byte, radix: 16)
    }

    /// The arguments being run (`clab run -d` hands them to the detached clab it starts).
    nonisolated(unsafe) static var arguments: [String] = []

    /// Returns the exit status; tests call this with real argv.
    public static func run(_ arguments: [String]) -> Int32 {
        Self.arguments = arguments
        do {
            if let step = FastParse.step(arguments) {
                try step.run()
                return 0
            }
            var command: ParsableCommand
            do {
                command = try Clab.parseAsRoot(arguments)
            } catch {
                throw negativeStage(arguments, error) ?? error
            }
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

    /// ArgumentParser reads `-1` as an option, even where a positional is expected
    /// (apple/swift-argument-parser#31), so `clab step -1` said "Missing expected argument
    /// '<stage>'". The stage is the only number clab takes positionally: name the problem.
    static func negativeStage(_ arguments: [String], _ error: any Error) -> ClabError? {
        guard Clab.message(for: error).contains("'<stage>'") else { return nil }
        let beforeCommand = arguments.prefix { $0 != "--" }
        guard let number = beforeCommand.first(where: { $0.count > 1 && $0.hasPrefix("-") && Int($0) != nil }) else {
            return nil
        }
        do {
            _ = try parseStage(number)
            return nil
        } catch let error as ClabError {
            return error
        } catch {
            return nil
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
    // Errors quote what the container chose (its command, its image's paths): no raw controls.
    let bytes = Array((ShownText.lines(text) + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "State directory (default /var/lib/clab, or $CLAB_ROOT).")
    var root: String?

    var layout: StateLayout { StateLayout.resolve(rootOption: root) }

    func validate() throws {
        // An empty path would resolve to the current directory, and clab would fill it.
        if root == "" {
            throw ValidationError("--root is empty: give the state directory, e.g. --root /tmp/clab")
        }
    }
}

public struct Clab: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "clab",
        abstract: "Build a container one kernel feature at a time, and watch each one work.",
        subcommands: [
            TourCommand.self, StepCommand.self, CheckCommand.self, StatsCommand.self, LessonsCommand.self,
            LessonCommand.self, ProgressCommand.self,
            RunCommand.self, CreateCommand.self, StartCommand.self, PSCommand.self, LogsCommand.self,
            StopCommand.self, KillCommand.self, RmCommand.self, StateCommand.self, EventsCommand.self,
            CleanupCommand.self, DiffCommand.self, CommitCommand.self, VolumeCommand.self,
            NetworkCommand.self,
            ImageCommand.self, PushCommand.self, PullCommand.self, LoginCommand.self, LogoutCommand.self,
            GCCommand.self,
            LabCommand.self, TraceCommand.self, InspectCommand.self, SeccompCommand.self, BundleCommand.self,
            ExecCommand.self, PauseCommand.self, UnpauseCommand.self, DaemonCommand.self,
        ])

    public init() {}
}

/// Left-aligns a column: the text and spaces to `width`, or the text and one space if longer.
func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}
