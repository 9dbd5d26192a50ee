import ClabSpec
import ClabSys
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
        let env = Env.get("CLAB_ROOT").flatMap { $0.isEmpty ? nil : $0 }
        if let chosen = rootOption ?? env {
            let absolute = chosen.hasPrefix("/") ? chosen : FileManager.default.currentDirectoryPath + "/" + chosen
            // A clean absolute path is its own standard form; only others go through URL (whose
            // first use costs a runtime type lookup on every container start).
            let root = isClean(absolute) ? absolute : URL(fileURLWithPath: absolute).standardizedFileURL.path
            return StateLayout(root: root, runDir: root + "/run")
        }
        return StateLayout(root: defaultRoot, runDir: defaultRunDir)
    }

    /// Absolute, no empty, `.` or `..` component, no trailing slash (and not `/` itself).
    static func isClean(_ path: String) -> Bool {
        guard path.hasPrefix("/"), path.count > 1, !path.hasSuffix("/") else { return false }
        return !path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).contains {
            $0.isEmpty || $0 == "." || $0 == ".."
        }
    }

    public var imagesDir: String { root + "/images" }
    public var layersDir: String { root + "/layers" }
    public var keptDir: String { root + "/kept" }
    public var volumesDir: String { root + "/volumes" }
    public var containersDir: String { runDir + "/containers" }

    public func containerDir(_ id: String) -> String { containersDir + "/" + id }

    /// The group of the directories a user-namespaced init must pass through: the mapped root's
    /// gid (100000 on the host), the one id besides root that may enter them.
    public static let mappedRootGroup: gid_t = IDMapping.defaultRange.host

    /// The directories that hold what images and containers bring: layers and their shifted
    /// copies, the stage-7 copy of the image, kept and running containers' writable layers,
    /// volumes. They hold setuid programs (an image's `chmod 4755`, kept as Docker keeps it) and
    /// files of the container's choosing, so no other host user may reach them: each is owned by
    /// root, mode 0710 with the mapped root's group (init mounts layers, upper directories and
    /// volumes from inside its user namespace, as uid/gid 100000, so it must pass), or 0700
    /// where only real root goes (the unshifted layers). Paths below them are predictable, so
    /// closing a directory on the way is what counts, not hiding names.
    public var closedDirectories: [(path: String, group: gid_t?)] {
        [
            (imagesDir, Self.mappedRootGroup), (layersDir, Self.mappedRootGroup), (layersDir + "/sha256", nil),
            (keptDir, Self.mappedRootGroup), (volumesDir, Self.mappedRootGroup),
            (containersDir, Self.mappedRootGroup),
        ]
    }

    /// Creates the directories clab needs, or says in one line why it cannot. The root and the
    /// run directory are left as they are (a `--root` may be the user's own directory); clab's
    /// own directories below them are closed (see `closedDirectories`), also when an older
    /// clab made them 0755.
    public func prepare() throws {
        func usable(_ dir: String, _ make: () throws -> Void) throws {
            do {
                try make()
                if access(dir, W_OK) != 0 { throw SyscallError("access \(dir)") }
            } catch let error as SyscallError {
                throw ClabError(
                    "state directory \(dir) is not usable (\(errnoDescription(error.errno))): pass --root DIR or set CLAB_ROOT to a writable directory"
                )
            }
        }
        for dir in [root, runDir] { try usable(dir) { try FS.makeDirectories(dir) } }
        for (dir, group) in closedDirectories { try usable(dir) { try Self.closeDirectory(dir, group: group) } }
    }

    /// Makes `dir` unless it exists and gives it owner root, mode 0710 and group `group`, or mode
    /// 0700 without one. Its parent must exist. A symlink in its place is refused (O_NOFOLLOW).
    public static func closeDirectory(_ dir: String, group: gid_t?) throws {
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw SyscallError("mkdir \(dir)") }
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SyscallError("open \(dir)") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SyscallError("stat \(dir)") }
        let gid = group ?? 0
        let mode: mode_t = group == nil ? 0o700 : 0o710
        if st.st_uid != 0 || st.st_gid != gid {
            guard fchown(fd, 0, gid) == 0 else { throw SyscallError("chown \(dir)") }
        }
        if st.st_mode & 0o7777 != mode {
            guard fchmod(fd, mode) == 0 else { throw SyscallError("chmod \(dir)") }
        }
    }

    /// For commands that only read the state: as another user they would see nothing, since
    /// the state is root's (see `closedDirectories`). Say so instead.
    public func requireReadable() throws {
        guard geteuid() != 0 else { return }
        for (dir, _) in closedDirectories where access(dir, X_OK) != 0 && errno == EACCES {
            throw ClabError(
                "clab's state in \(root) is root's only (\(dir) holds image layers, containers' files or volumes): run clab as root (sudo clab ...)"
            )
        }
    }
}
