import ClabInit

// The container's init: executed by the cloned child inside its new namespaces, it sets them
// up and executes the command. A separate, small binary with no Foundation: it is on the path
// of every container start (see bench/).
// `clab-init --probe ...` is the lab verifiers' single-threaded helper (see ProbeProcess).
// `clab-init --supervise ...` is a detached container's supervisor (see SupervisorProcess).
// `clab-init --created` waits, set up, for `clab start` before executing the command.
let arguments = CommandLine.arguments
if arguments.count > 1 && arguments[1] == "--probe" {
    ProbeProcess.main(Array(arguments.dropFirst(2)))
}
if arguments.count > 1 && arguments[1] == "--supervise" {
    SupervisorProcess.main(Array(arguments.dropFirst(2)))
}
// `clab-init --exec PID STARTTIME`: `clab exec`'s process joining a running container (ExecProcess).
if arguments.count > 1 && arguments[1] == "--exec" {
    ExecProcess.main(Array(arguments.dropFirst(2)))
}
// `clab-init --created-fifo`: the same, for clab-runtime: "S" comes on the container's exec.fifo.
InitProcess.main(
    waitForStart: arguments.count > 1 && arguments[1] == "--created",
    startFIFO: arguments.count > 1 && arguments[1] == "--created-fifo")
