import ClabHost
import ClabSys
import FoundationEssentials
import Glibc

/// What the kernel says a container's freezer is doing. `freezing`: asked to freeze, some task
/// not stopped yet (v1's FREEZING; on v2 cgroup.freeze is 1 but cgroup.events says frozen 0).
public enum FreezerState: String, Sendable, Codable {
    case thawed = "THAWED"
    case freezing = "FREEZING"
    case frozen = "FROZEN"
}

/// `clab pause` and `clab unpause`: the cgroup freezer. Every task of a frozen cgroup is stopped
/// by the kernel where it stands (not with SIGSTOP, which a process could observe and a parent
/// would see through waitpid) and runs on when thawed, none the wiser.
///
/// cgroup v1: a `freezer` hierarchy. Each stage-8 container gets a cgroup in it beside its
/// memory, cpu and pids ones (CgroupDriver.place), joined before "go", so every process of the
/// container is in it; `freezer.state` takes FROZEN or THAWED and reads FREEZING, FROZEN or
/// THAWED. cgroup v2: no controller; every cgroup has `cgroup.freeze` (write 1 or 0) and reports
/// the result as `frozen 0|1` in `cgroup.events`.
///
/// A frozen v1 task does not even die of SIGKILL until it is thawed: whoever kills a paused
/// container must thaw it too (ContainerCgroup.remove does).
public struct Freezer: Sendable, Equatable {
    public let dir: String
    public let version: CgroupVersion

    public init(dir: String, version: CgroupVersion) {
        self.dir = dir
        self.version = version
    }

    /// The freezer among a container's cgroup directories (its state file's `cgroups`): the one
    /// with `freezer.state` (v1) or `cgroup.freeze` (v2). nil: below stage 8, or a host whose v1
    /// layout has no freezer hierarchy.
    public init?(cgroupDirs: [String]) {
        if let dir = cgroupDirs.first(where: { FS.exists($0 + "/freezer.state") }) {
            self.init(dir: dir, version: .v1)
        } else if let dir = cgroupDirs.first(where: { FS.exists($0 + "/cgroup.freeze") }) {
            self.init(dir: dir, version: .v2)
        } else {
            return nil
        }
    }

    /// Read from the kernel every time (nil: the cgroup is gone).
    public func state() -> FreezerState? {
        switch version {
        case .v1:
            return FS.read(dir + "/freezer.state").flatMap { FreezerState(rawValue: $0.trimmed) }
        case .v2:
            guard let wanted = FS.read(dir + "/cgroup.freeze")?.trimmed, let events = FS.read(dir + "/cgroup.events")
            else { return nil }
            let frozen = events.split(separator: "\n").contains("frozen 1")
            if frozen { return .frozen }
            return wanted == "1" ? .freezing : .thawed
        }
    }

    /// Freezes and waits until every task is stopped. A freeze that does not complete within
    /// `timeout` seconds (a task stuck in an uninterruptible wait) is undone and reported.
    public func freeze(timeout: Double = 5) throws {
        try write(version == .v1 ? "FROZEN" : "1")
        let deadline = Date().addingTimeInterval(timeout)
        var round = 0
        while state() != .frozen {
            guard Date() < deadline else {
                try? thaw()
                throw ClabError(
                    "the freezer did not stop every process within \(fixed(timeout, 0)) s (\(dir)): left running")
            }
            // v1 can stay FREEZING when a task was forking as the freeze began: asking again helps.
            round += 1
            if version == .v1 && round % 10 == 0 { try write("FROZEN") }
            usleep(1000)
        }
    }

    /// Thaws and waits until the kernel reports it.
    public func thaw(timeout: Double = 5) throws {
        try write(version == .v1 ? "THAWED" : "0")
        let deadline = Date().addingTimeInterval(timeout)
        while state() != .thawed {
            guard Date() < deadline else {
                throw ClabError("the freezer did not thaw within \(fixed(timeout, 0)) s (\(dir))")
            }
            usleep(1000)
        }
    }

    private func write(_ value: String) throws {
        let file = dir + (version == .v1 ? "/freezer.state" : "/cgroup.freeze")
        do {
            try FS.write(value, to: file)
        } catch let error as SyscallError {
            throw ClabError("echo \(value) > \(file): \(errnoDescription(error.errno))")
        }
    }
}
