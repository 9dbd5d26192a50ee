import ClabDaemon

// `clabd daemon [options]` (what `clab daemon` runs), or `clabd [options]` (the systemd unit).
// The first word picks the tool, so other NIO-based tools can share this binary.
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "daemon" {
    Daemon.main(Array(arguments.dropFirst()))
}
Daemon.main(arguments)
