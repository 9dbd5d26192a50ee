import ArgumentParser
import ClabRuntime
import ClabSeccomp
import ClabSpec

struct SeccompCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seccomp",
        abstract: "Seccomp profiles (stage 12): print Docker's default, check one of your own.",
        subcommands: [SeccompDefault.self, SeccompCheck.self])
}

struct SeccompDefault: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "default",
        abstract: "Docker's default profile as JSON: edit it and pass it back with --security-opt seccomp=FILE.")

    func run() throws {
        print(SeccompProfile.dockerDefault.dockerJSON(), terminator: "")
    }
}

struct SeccompCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Read a Docker or OCI seccomp profile, compile it, and say what it does for a container.")

    @Argument(help: "The profile (the JSON `docker run --security-opt seccomp=` takes).")
    var file: String

    @Option(name: .customLong("cap-add"), help: "A capability the container keeps besides Docker's default 14.")
    var capAdd: [String] = []

    @Option(name: .customLong("cap-drop"), help: "A capability the container drops.")
    var capDrop: [String] = []

    func run() throws {
        let profile = try SeccompProfile.load(path: file)
        let caps = try Capability.resolve(base: Capability.dockerDefault, add: capAdd, drop: capDrop)
        let program = try profile.compile(capabilities: caps)
        let rules = profile.rules(for: caps)
        print("\(file): a valid profile, unlisted syscalls get \(profile.defaultAction.rawValue)")
        print(
            "with \(caps.count) capabilities: \(rules.count) of \(profile.syscalls.count) rules apply;"
                + " filter of \(program.count / 8) BPF instructions for \(profile.filterArchitectures.joined(separator: ", "))"
        )
        let skipped = profile.skippedNames
        if !skipped.isEmpty {
            print(
                "left at the default action (newer than this libseccomp): \(skipped.joined(separator: ", "))")
        }
    }
}
