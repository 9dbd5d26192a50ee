import ClabSys
import FoundationEssentials

/// Files clab reads at run time (lessons, labs, the breakout source). They live in the
/// repository; an installed clab finds them through CLAB_SHARE or /usr/local/share/clab.
public enum Resources {
    /// The directory holding `lessons/`, `labs/` and `images/`.
    public static func shareDir() throws -> String {
        if let env = Env.get("CLAB_SHARE"), !env.isEmpty {
            return env
        }
        // The binary runs from <repo>/.build/<triple>/<config>/: walk up to the repository.
        // (Path.dirname, not URL: this runs on every container start.)
        var dir = Path.dirname(executablePath())
        for _ in 0..<6 {
            if FS.exists(dir + "/lessons") && FS.exists(dir + "/images/busybox") {
                return dir
            }
            if dir == "/" { break }
            dir = Path.dirname(dir)
        }
        let installed = "/usr/local/share/clab"
        if FS.exists(installed + "/lessons") { return installed }
        throw ClabError(
            "cannot find clab's lessons and image sources: set CLAB_SHARE to the clab repository")
    }

    /// The running binary, resolved (so a symlink in /usr/local/bin still finds the repo).
    /// Read once: a container start asks for it twice (the share directory, clab-init's path).
    public static func executablePath() -> String { resolvedExecutable }

    private static let resolvedExecutable: String = FS.readLink("/proc/self/exe") ?? CommandLine.arguments[0]
}
