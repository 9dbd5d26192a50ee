import ClabHost
import ClabSys
import Glibc

/// Container names (`--name`), reserved atomically: `<runDir>/names/<name>` holds
/// "<id> <pid> <start time>" of the clab that claimed it. Two `clab run --name web` started at
/// the same moment both find no container named web in the records (neither has written its
/// state yet); the name file, made under a lock, lets exactly one of them through.
///
/// A claim stands while its container's record says it holds the name (a detached container
/// keeps it until `clab rm`, stopped or not; a foreground one while its clab runs), or, before
/// that record exists, while the claiming clab runs. Anything else is stale (a crash, a lost
/// run directory) and is taken over. `clab rm` and the end of a foreground container release it.
public enum ContainerNames {
    static func dir(_ layout: StateLayout) -> String { layout.runDir + "/names" }

    /// Claims `name` for container `id`, or throws the one-line refusal naming the holder.
    public static func reserve(_ name: String, id: String, layout: StateLayout) throws {
        try KeptContainers.validateName(name)
        let names = dir(layout)
        try FS.makeDirectories(names, mode: 0o700)
        let lock = open(names + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard lock >= 0 else { throw SyscallError("open \(names)/.lock") }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else { throw SyscallError("flock \(names)/.lock") }
        }
        let path = names + "/" + name
        if let holder = holder(path, layout: layout) {
            throw refusal(name, holder: holder, layout: layout)
        }
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SyscallError("create \(path)") }
        defer { close(fd) }
        let me = getpid()
        try FS.writeAll(fd, Array("\(id) \(me) \(Host.startTime(pid: me) ?? 0)\n".utf8), what: path)
    }

    /// Gives `name` up if container `id` holds it (idempotent; another's claim stays).
    public static func release(_ name: String, id: String, layout: StateLayout) {
        let path = dir(layout) + "/" + name
        guard let text = FS.read(path), text.split(separator: " ").first.map(String.init) == id else { return }
        unlink(path)
    }

    /// The id of the container whose claim on this name stands, or nil.
    static func holder(_ path: String, layout: StateLayout) -> String? {
        guard let text = FS.read(path) else { return nil }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 3, let pid = Int32(fields[1]), let start = UInt64(fields[2]) else { return nil }
        let id = String(fields[0])
        let dir = layout.containerDir(id)
        if let state = ContainerState.load(dir + "/state.json") {
            let record = ContainerRecord(state: state, dir: dir)
            return record.state.name == path.split(separator: "/").last.map(String.init)
                && (record.isDetached || record.status != .stopped) ? id : nil
        }
        // Not recorded yet: its clab is still preparing it.
        return ContainerRecord.alive(pid, startTime: start) ? id : nil
    }

    static func refusal(_ name: String, holder id: String, layout: StateLayout) -> ClabError {
        let dir = layout.containerDir(id)
        guard let state = ContainerState.load(dir + "/state.json") else {
            return ClabError(
                "a container is already named \(name) (being started, id \(id)): pick another --name", exitCode: 2)
        }
        let status = ContainerRecord(state: state, dir: dir).status
        return ClabError(
            "a container is already named \(name) (\(status.rawValue), id \(id)): pick another --name, or `clab rm \(status == .stopped ? "" : "-f ")\(name)`",
            exitCode: 2)
    }
}
