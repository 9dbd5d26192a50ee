import ArgumentParser
import ClabHost
import ClabLessons
import ClabRuntime
import ClabSys
import ClabTrace
import Glibc

/// `clab trace`: every syscall under a command, from clab's BPF tracer (Sources/ClabTrace).
/// `clab trace [run] --host|--step N -- CMD` traces; `clab trace view FILE` re-renders a saved trace.
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract:
            "Trace every syscall of a command with eBPF: in a stage-N container (labelled by stage) or on the host.",
        discussion: """
            Examples:
              clab trace --step 4 -- ls /          clab's setup, clab-init and ls, grouped by stage
              clab trace --host -- cat /etc/hostname
              clab trace --host --summary -- ls /  counts, errors and time per syscall (like strace -c)
              clab trace --step 7 --json t.jsonl -- id
              clab trace --host -o - -- ls / | grep openat   the trace on standard output
              clab trace view t.jsonl --html t.html   a page: a lane per process, stage bands, the calls
            Needs root and a kernel with BTF (/sys/kernel/btf/vmlinux).
            """,
        subcommands: [TraceRunCommand.self, TraceViewCommand.self],
        defaultSubcommand: TraceRunCommand.self)
}

struct TraceRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Trace a host command (--host) or a stage-N container run (--step N).")

    @Flag(help: "Trace a host command and its children, as strace -f does.")
    var host = false

    // .unconditional: "--step -1" must reach parseStage, not be read as an option "-1".
    @Option(parsing: .unconditional, help: "Trace the command run in the container of stage N, with clab's own setup.")
    var step: String?

    @Option(help: "Follow a running process and its descendants until they exit (or Ctrl-C).")
    var pid: Int32?

    @Option(help: "Write every event to FILE as JSON Lines (schema: README, `clab trace`); - is standard output.")
    var json: String?

    @Option(
        name: [.customShort("o"), .customLong("output")],
        help: "Write the trace (the text view, the summary) to FILE instead of standard error; - is standard output.")
    var output: String?

    @Flag(help: "Per-syscall counts, errors and time at the end, like strace -c.")
    var summary = false

    @Option(help: "Only these syscalls, comma-separated (e.g. mount,pivot_root,clone3).")
    var filter: String?

    @Option(help: "Ring buffer size, e.g. 8M (the default) or 32M.")
    var buffer: String = "8M"

    @Flag(help: "With --step: show every syscall, not only what the lessons are about.")
    var all = false

    @Flag(help: "With --step: do not print the stage banner.")
    var quiet = false

    /// With --step: every option `clab step` takes (image, volumes, limits, network ...).
    @OptionGroup var container: ContainerOptions

    @OptionGroup var global: GlobalOptions

    @Argument(parsing: .postTerminator, help: "The command to trace, after --.")
    var command: [String] = []

    func options() throws -> TraceOptions {
        var options = TraceOptions()
        options.jsonPath = json
        options.summary = summary
        options.all = all
        options.bufferBytes = try Self.parseSize(buffer)
        if let output {
            // Opened here, before anything runs: a bad path is one line and nothing left behind.
            let fd = output == "-" ? 1 : open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw ClabError("trace: --output \(output): \(errnoDescription(errno))", exitCode: 2) }
            options.outputFD = fd
        }
        if let filter {
            options.filter = filter.split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty }
        }
        return options
    }

    func run() throws {
        if [host, step != nil, pid != nil].filter({ $0 }).count != 1 {
            throw ClabError(
                "trace: say what to trace: --host -- CMD (a host command), --step N -- CMD (a container) or --pid PID",
                exitCode: 2)
        }
        let options = try options()
        let report: TraceReport
        if let pid {
            guard command.isEmpty else {
                throw ClabError("trace --pid: follows a running process; it takes no command", exitCode: 2)
            }
            report = try Tracer.traceAttach(pid: pid, options: options)
        } else if host {
            guard !command.isEmpty else {
                throw ClabError("trace --host: no command to trace (put it after --)", exitCode: 2)
            }
            report = try Tracer.traceHost(command, options: options)
        } else {
            report = try traceStep(options)
            for outcome in report.outcomes { stderrLine("clab: " + outcome) }
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }

    private func traceStep(_ options: TraceOptions) throws -> TraceReport {
        let request = try container.request(stage: try parseStage(step ?? ""), command: command)
        try Runtime.requireRoot()
        try Tracer.checkSupport()
        var runtime = Runtime(layout: global.layout)
        runtime.cgroupParent = try CgroupParentOption.environment()
        let prepared = try runtime.prepare(request, log: { if !quiet { stderrLine("clab: \($0)") } })
        for note in prepared.notes { stderrLine("clab: " + note) }
        if !quiet { stderrLine(Banner.text(for: prepared)) }
        return try Tracer.traceContainer(
            stage: prepared.spec.stageNumber, command: prepared.spec.command,
            initBinary: runtime.initPath, hostBinary: Resources.executablePath(), options: options
        ) { beforeGo in
            let result = try runtime.run(prepared, forwardSignals: true, beforeGo: [beforeGo]) { signal in
                stderrLine("clab: PID 1 of the container ignored signal \(signal) (lesson 3). Killing it with SIGKILL.")
            }
            return (result.status, result.outcomes)
        }
    }

    /// "8M", "8MiB", "65536", "512k": the sizes --memory takes, at most 1G.
    static func parseSize(_ text: String) throws -> Int {
        let bytes = try parseByteSize(text, option: "--buffer")
        guard bytes <= 1 << 30 else {
            throw ClabError("--buffer \(text): give a size such as 8M (at most 1G)", exitCode: 2)
        }
        return Int(bytes)
    }
}

struct TraceViewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "Re-render a saved trace (--json FILE): the terminal view, --summary, or an --html page.")

    @Argument(help: "A trace written by `clab trace ... --json FILE`.")
    var file: String

    @Option(help: "Only these syscalls, comma-separated.")
    var filter: String?

    @Flag(help: "Per-syscall counts, errors and time, like strace -c.")
    var summary = false

    @Flag(help: "Show every syscall of a --step trace, not only what the lessons are about.")
    var all = false

    @Option(help: "Write a self-contained HTML page: a lane per process, stage bands, decoded calls.")
    var html: String?

    func run() throws {
        var options = TraceView.Options()
        options.filter = filter.map { $0.split(separator: ",").map { String($0.filter { $0 != " " }) } }
        options.summary = summary
        options.all = all
        options.htmlPath = html
        try TraceView.run(path: file, options: options)
    }
}
