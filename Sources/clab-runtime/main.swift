import ClabCLI

// The OCI runtime command line (runc's), so podman/conmon and the OCI runtime-tools drive clab:
// a third front end of the same runtime as `clab` and the daemon (ClabCLI/RuntimeCLI.swift).
RuntimeCLI.main()
