import ArgumentParser
import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// What `clab run` and `clab create` share: the stage, the container options of `clab step`,
/// an image and a command.
struct LaunchOptions: ParsableArguments {
    @Option(help: "The stage the container is built up to (default 12, all of them).")
    var stage: String = "\(Stage.all.count)"

    @OptionGroup var container: ContainerOptions

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The image (default busybox; the same as --image).")
    var image: String?

    @Argument(parsing: .postTerminator, help: "The command to run, after --.")
    var command: [String] = []

    @Option(
        help:
            "An OCI runtime bundle (config.json + rootfs, from `clab bundle` or `runc spec`): its config.json says what runs (with --name only)."
    )
    var bundle: String?

    @Flag(
        name: .shortAndLong,
        help:
            "Detached: a pseudo-terminal for the container, kept by its supervisor (`clab logs` shows it). In the foreground the container gets one whenever your terminal is one."
    )
    var tty = false

    @Flag(
        name: .shortAndLong,
        help:
            "Keep stdin open: detached, a pipe its supervisor holds, which attached clients (`docker attach`) feed. In the foreground your stdin reaches the container anyway."
    )
    var interactive = false

    @Option(
        name: .customLong("log-max-size"),
        help:
            "Detached: container.log's cap (bytes, or k, M, G; default 10M); one rotated file (container.log.1) is kept besides."
    )
    var logMaxSize: String?

    /// What -d and create add, checked.
    func detachedOptions() throws -> DetachedOptions {
        var options = DetachedOptions(terminal: tty, interactive: interactive)
        if let logMaxSize {
            let bytes = try parseByteSize(logMaxSize, option: "--log-max-size")
            guard bytes >= 4096, bytes <= 1 << 40 else {
                throw ClabError("--log-max-size \(logMaxSize): give 4k or more (default 10M)", exitCode: 2)
            }
            options.logMaxSize = Int(bytes)
        }
        return options
    }

    /// The bundle's config.json is the whole container: options that would say otherwise are
    /// refused, not silently dropped.
    func checkBundleOptions() throws {
        guard bundle != nil else { return }
        let given: [(Bool, String)] = [
            (image != nil || container.image != nil, "an image"), (!command.isEmpty, "a command"),
            (stage != "\(Stage.all.count)", "--stage"), (container.hostname != nil, "--hostname"),
            (!container.volume.isEmpty, "-v"), (!container.publish.isEmpty, "-p"), (container.net != nil, "--net"),
            (!container.capAdd.isEmpty || !container.capDrop.isEmpty, "--cap-add/--cap-drop"),
            (!container.securityOpt.isEmpty, "--security-opt"), (container.readOnly, "--read-only"),
            (container.userns != nil, "--userns"), (container.timeOffset != nil, "--time-offset"),
            (container.keep, "--keep"), (!container.env.isEmpty, "-e"),
        ]
        if let (_, what) = given.first(where: \.0) {
            throw ClabError(
                "--bundle: \(what) cannot be given with a bundle: edit its config.json instead (only --name goes with it)",
                exitCode: 2)
        }
    }

    /// The container to start: from the options, or from a bundle's config.json.
    func prepare(_ runtime: Runtime, log: (String) -> Void) throws -> (PreparedContainer, image: String) {
        if let bundle {
            try checkBundleOptions()
            return (try runtime.prepare(bundle: bundle, name: container.name, log: log), "bundle:" + bundle)
        }
        let request = try request()
        return (try runtime.prepare(request, log: log), request.image)
    }

    func request() throws -> RunRequest {
        if image != nil && container.image != nil {
            throw ClabError("give the image once: as IMAGE or as --image, not both", exitCode: 2)
        }
        var options = container
        if let image { options.image = image }
        return try options.request(stage: try parseStage(stage), command: command)
    }

    /// `-p` as given, for `clab ps`.
    var ports: [String] { container.publish }

    /// Step 2 of Detached: in the detached clab, prepare and start the container, then become its
    /// supervisor. Every error goes back to the CLI as one line.
    func serve(createOnly: Bool) -> Never {
        do {
            let runtime = Runtime(layout: global.layout)
            let options = try detachedOptions()
            let (prepared, image) = try prepare(runtime, log: { Detached.note($0) })
            for note in prepared.notes { Detached.note(note) }
            Detached.serve(
                runtime: runtime, prepared: prepared, image: image, createOnly: createOnly, ports: ports,
                options: options)
        } catch let error as ClabError {
            Detached.fail(error)
        } catch {
            Detached.fail(ClabError(CLI.oneLine(Clab.message(for: error)), exitCode: 2))
        }
    }

    /// Step 1 of Detached: the CLI's side. Checks what it can first (bad options leave nothing).
    func launch() throws -> String {
        if bundle == nil { _ = try request() } else { try checkBundleOptions() }
        _ = try detachedOptions()
        try Runtime.requireRoot()
        try global.layout.prepare()
        return try Detached.launch(
            clab: Path.dirname(Runtime.defaultInitPath) + "/clab", arguments: CLI.arguments,
            note: { stderrLine("clab: " + $0) })
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command in a new container (stage 12 by default); -d: detached, with a supervisor.",
        discussion: "Example: clab run -d --name web -p 8080:80 -- httpd -f -p 80")

    @Flag(
        name: .shortAndLong, help: "Detached: print the container's id and leave it running (`clab ps`, `clab logs`).")
    var detach = false

    @OptionGroup var launch: LaunchOptions

    func run() throws {
        if detach {
            if Detached.statusFD != nil { launch.serve(createOnly: false) }
            print(try launch.launch())
            return
        }
        // In the foreground, like `docker run --rm`: no banner, the container goes at exit.
        if launch.logMaxSize != nil {
            throw ClabError(
                "--log-max-size caps a detached container's log: use it with -d (in the foreground the output is yours)",
                exitCode: 2)
        }
        if launch.bundle == nil { _ = try launch.request() } else { try launch.checkBundleOptions() }
        try Runtime.requireRoot()
        let runtime = Runtime(layout: launch.global.layout)
        let (prepared, _) = try launch.prepare(runtime, log: { stderrLine("clab: \($0)") })
        for note in prepared.notes { stderrLine("clab: " + note) }
        let result = try runtime.run(prepared, forwardSignals: true)
        for outcome in result.outcomes { stderrLine("clab: " + outcome) }
        if result.status.code != 0 { throw ExitCode(result.status.code) }
    }
}

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a container, set up and waiting before its command (OCI create); `clab start` runs it.")

    @OptionGroup var launch: LaunchOptions

    func run() throws {
        if Detached.statusFD != nil { launch.serve(createOnly: true) }
        print(try launch.launch())
    }
}

struct StartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start created containers: their command runs (OCI start).")

    @Argument(help: "Names, ids or unique id prefixes.")
    var containers: [String]

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        for key in containers {
            let record = try ContainerRecord.find(key, in: global.layout)
            try record.start(layout: global.layout)
            print(record.name)
        }
    }
}

struct StopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop containers: SIGTERM, then SIGKILL after -t seconds.")

    @Option(name: .shortAndLong, help: "Seconds to wait after SIGTERM before SIGKILL.")
    var time: Int = 10

    @Argument(help: "Names, ids or unique id prefixes.")
    var containers: [String]

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        guard time >= 0 else { throw ClabError("-t \(time): give seconds, 0 or more", exitCode: 2) }
        for key in containers {
            let record = try ContainerRecord.find(key, in: global.layout)
            try record.stop(timeout: time)
            print(record.name)
        }
    }
}

struct KillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill", abstract: "Send a signal to containers' init (default SIGKILL).")

    @Option(name: .shortAndLong, help: "The signal: a name (TERM, SIGHUP) or a number.")
    var signal: String = "KILL"

    @Argument(help: "Names, ids or unique id prefixes.")
    var containers: [String]

    @OptionGroup var global: GlobalOptions

    static let names: [String: Int32] = [
        "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "KILL": SIGKILL, "USR1": SIGUSR1, "USR2": SIGUSR2,
        "TERM": SIGTERM, "STOP": SIGSTOP, "CONT": SIGCONT, "ALRM": SIGALRM, "WINCH": SIGWINCH,
    ]

    static func parse(_ text: String) throws -> Int32 {
        let upper = text.uppercased()
        let bare = upper.hasPrefix("SIG") ? String(upper.dropFirst(3)) : upper
        if let n = Int32(text), n > 0, n < 65 { return n }
        if let n = names[bare] { return n }
        throw ClabError(
            "-s \(text): not a signal; give a number (1-64) or a name: \(names.keys.sorted().joined(separator: ", "))",
            exitCode: 2)
    }

    func run() throws {
        let sig = try Self.parse(signal)
        try Runtime.requireRoot()
        for key in containers {
            let record = try ContainerRecord.find(key, in: global.layout)
            try record.kill(signal: sig)
            print(record.name)
        }
    }
}

struct RmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove containers (stopped ones, or any with -f) and kept containers' writable layers. Volumes stay."
    )

    @Flag(name: .shortAndLong, help: "Kill a running container first.")
    var force = false

    @Argument(help: "Names, ids or unique id prefixes; or names given with --keep.")
    var names: [String]

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        let kept = KeptContainers(layout: global.layout)
        let all = ContainerRecord.all(in: global.layout)
        let records = try names.map { name in
            let record = try? ContainerRecord.find(name, among: all)
            if record == nil && (try? kept.meta(name)) == nil {
                // No such container: the same one line either way.
                _ = try ContainerRecord.find(name, among: all)
            }
            if let record { try record.check(force ? .forceRemove : .remove) }
            return (name, record)
        }
        // -f of many: kill them all first, so their supervisors clean up in parallel.
        if force {
            for (_, record) in records {
                guard let record, record.status != .stopped, let pid = record.state.initPid else { continue }
                ContainerRecord.signal(pid, startTime: record.state.initStartTime, SIGKILL)
            }
        }
        for (name, record) in records {
            if let record { try Detached.remove(record, layout: global.layout, force: force) }
            if let record, record.state.name != name, record.id != name {
                print("removed \(record.id)")
                continue
            }
            if (try? kept.meta(name)) != nil { try kept.remove(name) }
            print("removed \(name)")
        }
    }
}

struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "A container's state as the OCI runtime spec's state JSON.")

    @Argument(help: "Name, id or unique id prefix.")
    var container: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try global.layout.requireReadable()
        print(try ContainerRecord.find(container, in: global.layout).ociStateJSON)
    }
}

/// `clab _cleanup ID ROOT RUNDIR`: the supervisor execve's it once the container exited.
struct CleanupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_cleanup", abstract: "(internal) Remove an exited container's host side.", shouldDisplay: false)

    @Argument var id: String
    @Argument var root: String
    @Argument var runDir: String

    func run() throws {
        try Runtime.requireRoot()
        guard !id.isEmpty, id.allSatisfy(\.isHexDigit) else {
            throw ClabError("_cleanup: '\(id)' is not a container id")
        }
        Detached.releaseHostResources(layout: StateLayout(root: root, runDir: runDir), id: id)
    }
}
