// clabd: the part of clab that links SwiftNIO. `clab daemon` and `clab push|pull|login|logout`
// execve this binary (Sources/ClabRuntime/Clabd.swift), so the clab command itself stays static and
// starts in a millisecond. The first word picks the tool. No top-level `await`: this file runs
// synchronously on the main thread, so the registry commands block their signals before any
// other thread exists (RegistryCommands.prepare).
import ClabDaemon
import ClabRegistry
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case let name? where RegistryCommands.names.contains(name):
    RegistryCommands.prepare()
    exit(RegistryCommands.blocking { await RegistryCommands.main(arguments) })
case "lab16-facts":
    exit(RegistryCommands.blocking { await Lab16Facts.main(Array(arguments.dropFirst())) })
case "daemon":
    // `clabd daemon [options]`, what `clab daemon` runs.
    Daemon.main(Array(arguments.dropFirst()))
default:
    // `clabd [options]`, as the systemd unit starts it.
    Daemon.main(arguments)
}
