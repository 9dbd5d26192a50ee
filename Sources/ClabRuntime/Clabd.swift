import ClabHost
import ClabSys
import FoundationEssentials
import Glibc

/// clabd, the sibling executable that links SwiftNIO (the registry client, the daemon). clab
/// itself is static and starts in about a millisecond; NIO would cost it that on every
/// command. So `clab push|pull|login|logout` replace themselves with clabd (execve: same pid,
/// same terminal, same exit status), and the lab 16 verifier runs it for its registry reads.
public enum Clabd {
    /// `clabd` beside the running clab (or beside the test runner in .build/); CLAB_CLABD overrides.
    public static var path: String {
        if let given = ProcessInfo.processInfo.environment["CLAB_CLABD"], !given.isEmpty { return given }
        return Path.dirname(Resources.executablePath()) + "/clabd"
    }

    static func check() throws -> String {
        let path = path
        guard access(path, X_OK) == 0 else {
            throw ClabError(
                "\(path) is missing: clab's registry commands live in the clabd executable installed beside clab (`make install`, or `swift build` builds both)"
            )
        }
        return path
    }

    /// Replaces this process with `clabd ARGS`; returns only by throwing.
    public static func exec(_ arguments: [String]) throws -> Never {
        let path = try check()
        let argv = [path] + arguments
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        execv(path, &cArgs)
        throw ClabError("cannot run \(path): \(errnoDescription(errno))")
    }

    /// Runs `clabd ARGS` and returns its status and output (stdout and stderr together).
    public static func run(_ arguments: [String], timeout: Int32 = 60) throws -> (status: Int32, output: String) {
        try Host.run([try check()] + arguments, timeout: timeout)
    }
}
