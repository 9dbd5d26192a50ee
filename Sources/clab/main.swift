import ClabCLI
import ClabCore

// `clab __init` is the container's init, executed by the cloned child inside its namespaces.
// It skips argument parsing: it is on the path of every container start.
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "__init" {
    InitProcess.main()
}
CLI.main()
