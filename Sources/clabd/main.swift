// clabd: the part of clab that links SwiftNIO. `clab daemon` and `clab push|pull|login|logout`
// execve this binary (Sources/ClabCore/Clabd.swift), so the clab command itself stays static and
// starts in a millisecond. The first word picks the tool.
import ClabDaemon
import ClabRegistry
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case let name? where RegistryCommands.names.contains(name):
    exit(await RegistryCommands.main(arguments))
case "lab16-facts":
    exit(await Lab16Facts.main(Array(arguments.dropFirst())))
case "daemon":
    // `clabd daemon [options]`, what `clab daemon` runs.
    Daemon.main(Array(arguments.dropFirst()))
default:
    // `clabd [options]`, as the systemd unit starts it.
    Daemon.main(arguments)
}
