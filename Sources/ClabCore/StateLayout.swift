import FoundationEssentials
import Glibc

/// Where clab keeps things on the host. Images (and later volumes) are user data under
/// `root`; per-container runtime state lives under `runDir` and is removed at exit or by gc.
public struct StateLayout: Sendable {
    public let root: String
    public let runDir: String

    public static let defaultRoot = "/var/lib/clab"
    public static let defaultRunDir = "/run/clab"

    public init(root: String, runDir: String) {
        self.root = root
        self.runDir = runDir
    }

    /// `--root DIR` beats `CLAB_ROOT`, which beats the defaults. With an explicit root, runtime
    /// state goes beneath it too, so parallel tests with their own roots never meet.
    public static func resolve(rootOption: String?) -> StateLayout {
        let env = ProcessInfo.processInfo.environment["CLAB_ROOT"].flatMap { $0.isEmpty ? nil : $0 }
        if let chosen = rootOption ?? env {
            let absolute = chosen.hasPrefix("/") ? chosen : FileManager.default.currentDirectoryPath + "/" + chosen
            let root = URL(fileURLWithPath: absolute).standardizedFileURL.path
            return StateLayout(root: root, runDir: root + "/run")
        }
        return StateLayout(root: defaultRoot, runDir: defaultRunDir)
    }

    public var imagesDir: String { root + "/images" }
    public var containersDir: String { runDir + "/containers" }

    public func containerDir(_ id: String) -> String { containersDir + "/" + id }

    /// Creates the directories clab needs, or says in one line why it cannot. Directories are
    /// 0755 because a user-namespaced init (uid 100000 on the host) must walk through them.
    public func prepare() throws {
        for dir in [root, imagesDir, runDir, containersDir] {
            do {
                try FS.makeDirectories(dir)
                if access(dir, W_OK) != 0 { throw SyscallError("access \(dir)") }
            } catch let error as SyscallError {
                throw ClabError(
                    "state directory \(dir) is not usable (\(errnoDescription(error.errno))): pass --root DIR or set CLAB_ROOT to a writable directory"
                )
            }
        }
    }
}
