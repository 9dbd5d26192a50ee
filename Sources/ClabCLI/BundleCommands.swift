import ArgumentParser
import ClabCore
import Glibc

struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Write an OCI runtime bundle (config.json + rootfs) that runc, crun and clab run unchanged.",
        discussion: """
            The container stage 12 builds from IMAGE: Docker's 14 capabilities, no_new_privs, Docker's \
            seccomp profile, masked /proc paths, clab's default limits, and a user namespace mapping 0 to \
            100000 (65536 ids) over a rootfs owned by that range. Then: runc run -b DIR ID, crun run -b DIR ID, \
            or clab run --bundle DIR.
            """)

    @Argument(help: "NAME[:TAG] of an image (clab image ls).")
    var image: String

    @Argument(help: "A new or empty directory for the bundle.")
    var directory: String

    @Option(help: "The container's hostname (default: a random id).")
    var hostname: String?

    @OptionGroup var global: GlobalOptions

    @Argument(parsing: .postTerminator, help: "The command (default: the image's CMD).")
    var command: [String] = []

    func run() throws {
        _ = try ImageRef.parse(image)
        try Runtime.requireRoot()
        let runtime = Runtime(layout: global.layout)
        let written = try runtime.writeBundle(
            BundleRequest(image: image, directory: directory, command: command, hostname: hostname),
            log: { stderrLine("clab: \($0)") })
        print(written)
    }
}

/// Until `clab run --bundle DIR` (the lifecycle's `run`) calls `Runtime.prepare(bundle:)`: the
/// bundle in the foreground, as `clab step` runs a stage.
struct RunBundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-bundle", abstract: "Run an OCI bundle in the foreground (temporary).",
        shouldDisplay: false)

    @Argument(help: "The bundle directory.")
    var directory: String

    @Option(help: "A name for the container.")
    var name: String?

    @Flag(help: "Do not print clab's notes.")
    var quiet = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        let runtime = Runtime(layout: global.layout)
        let prepared = try runtime.prepare(
            bundle: directory, name: name, log: { if !quiet { stderrLine("clab: \($0)") } })
        if !quiet { for note in prepared.notes { stderrLine("clab: " + note) } }
        let result = try runtime.run(prepared, forwardSignals: true)
        for outcome in result.outcomes { stderrLine("clab: " + outcome) }
        if result.status.code != 0 { throw ExitCode(result.status.code) }
    }
}
