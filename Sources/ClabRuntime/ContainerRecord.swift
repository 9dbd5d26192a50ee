import CShims
import ClabCgroups
import ClabHost
import ClabNetwork
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// What a detached container's state.json adds: it is kept after exit, until `clab rm`.
public struct DetachedFields: Codable, Sendable, Equatable {
    public var image: String
    /// `-p` as given (`8080:80/tcp`), for `clab ps`.
    public var ports: [String]

    public init(image: String, ports: [String]) {
        self.image = image
        self.ports = ports
    }
}

/// One container as `clab ps`, `clab state`, `clab stop`... see it: its state.json, its event
/// history, and what the kernel says now. The status is never taken on trust from a file: a
/// recorded "running" whose supervisor (or clab) is gone is shown stopped, with why.
public struct ContainerRecord: Sendable {
    public let state: ContainerState
    public let dir: String
    public let events: [EventLog.Event]
    /// Read again on every use (the kernel's view changes: a pause, an exit), never cached.
    public var status: LifecycleStatus { evaluate().status }
    /// Why it is stopped when nothing recorded an exit, or how it exited ("code=0").
    public var why: String? { evaluate().why }

    public var id: String { state.id }
    public var name: String { state.name ?? state.id }
    public var isDetached: Bool { state.detached != nil }

    public init(state: ContainerState, dir: String) {
        self.state = state
        self.dir = dir
        self.events = EventLog.parse(FS.read(dir + "/" + EventLog.fileName) ?? "")
    }

    private func evaluate() -> (status: LifecycleStatus, why: String?) {
        let managerAlive =
            state.ociRuntime == true ? state.managerAlive : Self.alive(state.clabPid, startTime: state.clabStartTime)
        let initAlive = state.initPid.map { Self.alive($0, startTime: state.initStartTime) } ?? false
        guard state.detached != nil else {
            // `clab step`: it lives exactly as long as its clab, and its init.
            let alive = managerAlive && (initAlive || state.initPid == nil)
            if alive { return (Self.frozen(state) ? .paused : .running, nil) }
            return (
                .stopped,
                managerAlive
                    ? "its init (pid \(state.initPid ?? 0)) is gone" : "its clab (pid \(state.clabPid)) is gone"
            )
        }
        let last = events.last { EventLog.statusAfter[$0.name] != nil }
        let recorded = last.flatMap { EventLog.statusAfter[$0.name] } ?? .created
        switch recorded {
        case .stopped:
            return (.stopped, last.map { $0.name == "exited" ? $0.detail : $0.name + ": " + $0.detail })
        case _ where !managerAlive && state.ociRuntime == true:
            // clab-runtime's caller (conmon) is init's parent: it reaped the exit status.
            return (.stopped, "its init (pid \(state.initPid ?? 0)) exited; its parent has the status")
        case _ where !managerAlive:
            return (.stopped, "supervisor (pid \(state.clabPid)) gone, no exit recorded (killed?)")
        case _ where !initAlive && state.initPid != nil:
            // The supervisor is about to record it.
            return (.stopped, "exited (being recorded)")
        case .running, .paused:
            return (Self.frozen(state) ? .paused : .running, nil)
        case .created:
            return (.created, nil)
        }
    }

    /// The process exists, is the one recorded (same start time), and is not a zombie (an
    /// orphaned supervisor waits for a reaper that may be slow, or absent in a container).
    public static func alive(_ pid: Int32, startTime: UInt64?) -> Bool {
        guard pid > 0, let stat = FS.read("/proc/\(pid)/stat").flatMap(ProcStat.init), stat.isLive else {
            return false
        }
        return startTime == nil || stat.startTime == startTime
    }

    /// Sends `sig` to `pid` only if it is the process that started at `startTime`, with no window
    /// for the pid to be reused in between: a pidfd pins the process first, its start time is
    /// checked after (a reuse before the open shows as another start time), and the signal goes
    /// through the pidfd (a process that exits since gets nothing; no other can). False with
    /// errno (ESRCH: not that process any more).
    @discardableResult
    public static func signal(_ pid: Int32, startTime: UInt64?, _ sig: Int32) -> Bool {
        guard pid > 0 else {
            errno = ESRCH
            return false
        }
        let fd = clab_pidfd_open(pid)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard alive(pid, startTime: startTime) else {
            errno = ESRCH
            return false
        }
        return clab_pidfd_send_signal(fd, sig) == 0
    }

    /// Paused is the freezer's state, read from the kernel (cgroup.events on v2, freezer.state
    /// on v1): FREEZING counts, its processes no longer run.
    static func frozen(_ state: ContainerState) -> Bool {
        switch Freezer(cgroupDirs: ownCgroups(state))?.state() {
        case .frozen?, .freezing?: return true
        default: return false
        }
    }

    /// Its cgroup directories, only those that are the container's own: clean paths under
    /// /sys/fs/cgroup named by its id, or ending in the OCI cgroupsPath it was created with. A
    /// damaged state file cannot point clab at a cgroup by "..", nor at one named otherwise.
    static func ownCgroups(_ state: ContainerState) -> [String] {
        let tail = state.cgroupsPath.map { "/" + $0.split(separator: "/").joined(separator: "/") }
        return (state.cgroups ?? []).filter { dir in
            let parts = dir.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            guard dir.hasPrefix("/sys/fs/cgroup/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." })
            else { return false }
            if let tail, tail.count > 1, dir.hasSuffix(tail) { return true }
            return Path.basename(dir) == state.id
        }
    }

    /// The levels clab made above a cgroupsPath: only the directories the path itself names above
    /// one of its own cgroups ("a" and "a/b" of "a/b/c"), never the cgroup it was placed in.
    static func ownCgroupLevels(_ state: ContainerState) -> [String] {
        let depth = (state.cgroupsPath ?? "").split(separator: "/").count
        var allowed: Set<String> = []
        for dir in ownCgroups(state) where depth > 1 {
            var level = dir
            for _ in 1..<depth {
                level = Path.dirname(level)
                allowed.insert(level)
            }
        }
        return (state.cgroupLevels ?? []).filter(allowed.contains)
    }

    public var cgroupDirs: [String] { Self.ownCgroups(state) }

    /// The cgroup freezer (stage 8 on), nil below stage 8 or without a freezer hierarchy.
    public var freezer: Freezer? { Freezer(cgroupDirs: cgroupDirs) }

    /// The init's pid, when it is still the process the state recorded (pid + start time).
    public var livePid: Int32? {
        guard status != .stopped, let pid = state.initPid, Self.alive(pid, startTime: state.initStartTime) else {
            return nil
        }
        return pid
    }

    public var displayName: String { name }

    /// The spec it was started from (`<dir>/spec.wire`, written by `clab run`, `clab create`).
    public func spec() throws -> ContainerSpec {
        let path = dir + "/spec.wire"
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw ClabError(
                "container \(name) has no \(path): only containers started by `clab run` or `clab create` can be joined"
            )
        }
        do {
            return try ContainerSpec(wire: Array(bytes))
        } catch {
            throw ClabError("container \(name): \(path): \(error)")
        }
    }

    /// Every container directory of the state root with a readable state.json.
    public static func all(in layout: StateLayout) -> [ContainerRecord] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: layout.containersDir)) ?? []
        return ids.sorted().compactMap { id in
            let dir = layout.containerDir(id)
            return ContainerState.load(dir + "/state.json").map { ContainerRecord(state: $0, dir: dir) }
        }
    }

    /// By name, id, or a unique id prefix (as Docker finds them).
    public static func find(_ key: String, in layout: StateLayout) throws -> ContainerRecord {
        // By id: its own directory, without reading every other record.
        if key.count == 12, key.allSatisfy(\.isHexDigit),
            let state = ContainerState.load(layout.containerDir(key) + "/state.json"),
            state.id == key
        {
            return ContainerRecord(state: state, dir: layout.containerDir(key))
        }
        return try find(key, among: all(in: layout))
    }

    /// The same lookup in records read once (`clab rm` of fifty names reads the state root once).
    public static func find(_ key: String, among records: [ContainerRecord]) throws -> ContainerRecord {
        if let exact = records.first(where: { $0.state.name == key || $0.id == key }) { return exact }
        let matches = key.isEmpty ? [] : records.filter { $0.id.hasPrefix(key) }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 {
            throw ClabError(
                "'\(key)' is the start of \(matches.count) container ids (\(matches.map(\.id).joined(separator: ", "))): give more of it",
                exitCode: 1)
        }
        throw ClabError("no container '\(key)': `clab ps -a` lists them", exitCode: 1)
    }

    /// The record's status checked against the state machine, as one line for the user.
    public func check(_ action: LifecycleAction) throws {
        do {
            try Lifecycle.check(action, from: status, name: name)
        } catch {
            throw ClabError(error.description, exitCode: 1)
        }
    }

    /// When it entered its current state (ms since the epoch).
    public var since: Int { since(status) }

    private func since(_ status: LifecycleStatus) -> Int {
        let wanted: Set<String> =
            switch status {
            case .created: ["created"]
            case .running, .paused: ["started", "unpaused", "paused"]
            case .stopped: ["exited", "failed", "lost"]
            }
        return events.last { wanted.contains($0.name) }?.milliseconds ?? state.created * 1000
    }

    /// `Up 3 minutes`, `Exited (0) 2 seconds ago`, `Created`, as `docker ps` says it.
    public func statusText(nowMilliseconds: Int = EventLog.nowMilliseconds()) -> String {
        let (status, why) = evaluate()
        let age = Self.duration(max(0, nowMilliseconds - since(status)) / 1000)
        switch status {
        case .created: return "Created"
        case .running: return "Up \(age)"
        case .paused: return "Up \(age) (Paused)"
        case .stopped:
            if let code = exitCode(status) { return "Exited (\(code)) \(age) ago" }
            return "Exited (?) \(age) ago: \(why ?? "unknown")"
        }
    }

    /// From the "exited code=N" event.
    public var exitCode: Int32? { exitCode(status) }

    private func exitCode(_ status: LifecycleStatus) -> Int32? {
        guard let exited = events.last(where: { $0.name == "exited" }), status == .stopped else { return nil }
        return exited.detail.split(separator: " ").first { $0.hasPrefix("code=") }.flatMap { Int32($0.dropFirst(5)) }
    }

    static func duration(_ seconds: Int) -> String {
        switch seconds {
        case ..<2: return "1 second"
        case ..<60: return "\(seconds) seconds"
        case ..<120: return "1 minute"
        case ..<3600: return "\(seconds / 60) minutes"
        case ..<7200: return "1 hour"
        case ..<86400: return "\(seconds / 3600) hours"
        default: return "\(seconds / 86400) days"
        }
    }

    /// The OCI runtime state (runtime-spec `state-schema.json`): ociVersion, id, status, pid
    /// (while created or running), bundle, annotations. The schema's status has no "paused"
    /// (the freezer is not an OCI state): a paused container is "running", with the annotation
    /// `org.clab.paused: "true"` saying so (runc prints "paused", which the schema rejects).
    public var ociStateJSON: String {
        // One reading of the kernel for the whole document: a container exiting meanwhile must
        // not come out "running" without a pid.
        let (status, why) = evaluate()
        let ociStatus: String =
            switch status {
            case .created: "created"
            case .running, .paused: "running"
            case .stopped: "stopped"
            }
        var annotations: [(String, String)] = [("org.clab.stage", "\(state.stage)")]
        if let name = state.name { annotations.append(("org.clab.name", name)) }
        if let image = state.detached?.image {
            annotations.append(("org.clab.image", image))
            annotations.append(("org.clab.supervisor", "\(state.clabPid)"))
        }
        if status == .paused { annotations.append(("org.clab.paused", "true")) }
        if let why, status == .stopped { annotations.append(("org.clab.stopped", why)) }
        var lines = [
            "  \"ociVersion\": \"1.2.0\"", "  \"id\": \(JSONText.quoted(id))", "  \"status\": \"\(ociStatus)\"",
        ]
        if status != .stopped, let pid = state.initPid { lines.append("  \"pid\": \(pid)") }
        lines.append("  \"bundle\": \(JSONText.quoted(dir))")
        lines.append(
            "  \"annotations\": {\n"
                + annotations.map { "    \(JSONText.quoted($0.0)): \(JSONText.quoted($0.1))" }.joined(separator: ",\n")
                + "\n  }")
        return "{\n" + lines.joined(separator: ",\n") + "\n}"
    }
}
