import ClabKernel

// The container's init: executed by the cloned child inside its new namespaces, it sets them
// up and executes the command. A separate, small binary with no Foundation: it is on the path
// of every container start (see bench/).
InitProcess.main()
