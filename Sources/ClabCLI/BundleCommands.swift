import ArgumentParser
import ClabImages
import ClabRuntime
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
