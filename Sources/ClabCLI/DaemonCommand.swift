import ArgumentParser
import ClabHost
import ClabRuntime
import ClabSys
import Glibc

/// `clab daemon ...`: execve's `clabd` beside clab. The daemon is its own binary so that SwiftNIO
/// (its HTTP server, threads and size) stays out of `clab`, which every container start runs.
struct DaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Serve the Docker Engine API on a unix socket: the docker CLI drives clab's containers.",
        discussion: """
            Runs clabd in the foreground. Then: DOCKER_HOST=unix:///run/clab/clab.sock docker ps
            Options: --socket PATH (default /run/clab/clab.sock, mode 0660 root:root),
            --tcp 127.0.0.1:PORT (loopback only), --root DIR, --debug (print each request).
            Whoever can use the socket is root on this host.
            """)

    @Argument(parsing: .captureForPassthrough, help: "clabd's options (see `clab daemon --help`).")
    var arguments: [String] = []

    func run() throws {
        // CLAB_CLABD: another clabd (tests).
        let clabd =
            getenv("CLAB_CLABD").map { String(cString: $0) } ?? Path.dirname(Resources.executablePath()) + "/clabd"
        guard access(clabd, X_OK) == 0 else {
            throw ClabError("no clabd beside clab (\(clabd)): build it (`swift build`) or install it with clab")
        }
        let argv = [clabd, "daemon"] + arguments
        var environment: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            environment.append(String(cString: pointer))
            entry += 1
        }
        _ = withCStrings(argv) { cArgv in withCStrings(environment) { execve(clabd, cArgv, $0) } }
        throw ClabError("execve \(clabd): \(errnoDescription(errno))")
    }
}
