import ArgumentParser
import ClabRuntime
import Glibc

struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command inside a running container: its namespaces, cgroups, capabilities, seccomp filter.",
        discussion: """
            The command joins every namespace of the container's init (setns on a pidfd, the user
            namespace first), its cgroups before it runs, and the hardening the container started
            with. clab exits with the command's status (128+signal when killed).
            """)

    @Flag(name: .shortAndLong, help: "Keep stdin open: the command reads yours (else /dev/null).")
    var interactive = false

    @Flag(name: .shortAndLong, help: "A pseudo-terminal for the command (with -i: an interactive shell).")
    var tty = false

    @Option(name: [.customShort("w"), .long], help: "The working directory inside the container.")
    var workdir: String?

    @Option(name: [.customShort("e"), .customLong("env")], help: "NAME=VALUE added to the container's environment.")
    var env: [String] = []

    @Option(name: [.customShort("u"), .long], help: "NAME|UID[:GROUP|GID] inside the container (default root).")
    var user: String?

    @Argument(help: "The container's name, id, or the start of its id.")
    var container: String

    @Argument(parsing: .postTerminator, help: "The command to run, after --.")
    var command: [String] = []

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        let record = try ContainerRecord.find(container, in: global.layout)
        var request = ExecRequest(command: command)
        request.env = env
        request.workdir = workdir
        request.tty = tty
        request.interactive = interactive
        request.user = user
        let session = try ExecSession(record, request, initPath: Runtime.defaultInitPath)
        try session.start()
        let status = session.wait(forwardSignals: true)
        if status.code != 0 { throw ExitCode(status.code) }
    }
}

/// The containers `pause` and `unpause` act on, each in turn, its name printed once done.
struct FreezerTargets: ParsableArguments {
    @Argument(help: "Containers: names, ids, or the starts of ids.")
    var containers: [String]

    @OptionGroup var global: GlobalOptions

    func each(_ action: (ContainerRecord) throws -> Void) throws {
        try Runtime.requireRoot()
        for name in containers {
            try action(try ContainerRecord.find(name, in: global.layout))
            print(name)
        }
    }
}

struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Freeze every process of a running container (the cgroup freezer).")

    @OptionGroup var targets: FreezerTargets

    func run() throws { try targets.each { try $0.pause() } }
}

struct UnpauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpause", abstract: "Thaw a paused container: its processes run on where they stopped.")

    @OptionGroup var targets: FreezerTargets

    func run() throws { try targets.each { try $0.unpause() } }
}
