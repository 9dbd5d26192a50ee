import ClabCgroups
import ClabHost
import ClabImages
import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The Engine API routes over clab's runtime. Every container operation goes through the code
/// the CLI uses (Detached.launch of `clab create`, ContainerRecord's start/stop/kill, Detached.remove,
/// ExecSession), so `clab ps` and `docker ps` show the same containers.
final class Engine: Sendable {
    static let apiVersion = "1.41"
    static let minAPIVersion = "1.24"
    static let clabVersion = "0.14.0"

    let layout: StateLayout
    /// `--root` as given to the daemon (handed on to `clab create`); nil: clab's defaults or $CLAB_ROOT.
    let rootOption: String?
    /// The clab binary beside clabd.
    let clab: String
    let pool: NIOThreadPool
    /// `--debug`: every request line and body to stderr (what the docker CLI sends).
    let debug: Bool
    let execs = Mutex<[String: ExecState]>([:])
    /// Containers created with AutoRemove (`docker run --rm`), removed once they stop; the exit
    /// codes of those removed, for a `wait?condition=removed` that asks after.
    let autoRemove = Mutex<Set<String>>([])
    let removedCodes = Mutex<[String: Int]>([:])
    /// The supervisors this daemon spawned, by container id: its children, reaped by startReaper.
    let children = Mutex<[String: Int32]>([:])
    /// Wakes the reaper's poll(2) when a container is added to watch (startReaper).
    let reaperWake = WakePipe()

    init(layout: StateLayout, rootOption: String?, clab: String, pool: NIOThreadPool, debug: Bool = false) {
        self.debug = debug
        self.layout = layout
        self.rootOption = rootOption
        self.clab = clab
        self.pool = pool
    }

    /// Runs `body` on a thread of its own (waits, log follows: they may last long).
    static func thread(_ body: @escaping @Sendable () -> Void) {
        Thread.detachNewThread(body)
    }

    // MARK: - routing

    func route(_ request: Request, on loop: EventLoop) -> EventLoopFuture<Reply> {
        pool.runIfActive(eventLoop: loop) { try self.handle(request) }.flatMap { routed in
            switch routed {
            case .reply(let reply): return loop.makeSucceededFuture(reply)
            case .attach(let plan): return self.attach(plan, on: loop)
            }
        }
    }

    enum Routed: Sendable {
        case reply(Reply)
        case attach(AttachPlan)
    }

    func handle(_ request: Request) throws -> Routed {
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let method = request.method
        func unsupported() -> APIError {
            APIError(.notImplemented, "clab's daemon does not implement \(method.rawValue) \(request.path)")
        }
        switch (method, parts.first ?? "") {
        case (.GET, "_ping"), (.HEAD, "_ping"):
            return .reply(.text(.ok, "OK"))
        case (.GET, "version"):
            return .reply(.json(.ok, version()))
        case (.GET, "info"):
            return .reply(.json(.ok, info()))
        case (.POST, "auth"):
            return .reply(try login(request))
        case (.GET, "events"):
            return .reply(try events(request))
        case (_, "containers"):
            return try containers(request, Array(parts.dropFirst()), unsupported)
        case (_, "exec"):
            return try exec(request, Array(parts.dropFirst()), unsupported)
        case (_, "images"):
            return .reply(try images(request, Array(parts.dropFirst()), unsupported))
        case (.GET, let kind)
        where ["networks", "volumes", "plugins", "nodes", "services", "tasks", "secrets", "configs"].contains(kind)
            && parts.count >= 2:
            // `docker inspect NAME` asks every kind of object in turn: these are not served, so
            // none is found (a 501 would end its search with an error).
            throw APIError(.notFound, "No such object: \(parts[1]) (clab's daemon serves no \(kind))")
        default:
            throw unsupported()
        }
    }

    // MARK: - system

    func version() -> JSON {
        let kernel = Self.kernel
        let details: JSON = .object([
            ("ApiVersion", .string(Self.apiVersion)), ("Arch", .string("amd64")), ("BuildTime", .string("")),
            ("GitCommit", .string("clab")), ("GoVersion", .string("swift")), ("KernelVersion", .string(kernel)),
            ("MinAPIVersion", .string(Self.minAPIVersion)), ("Os", .string("linux")),
            ("Experimental", .string("false")),
        ])
        return .object([
            ("Platform", .object([("Name", .string("clab"))])),
            (
                "Components",
                .array([
                    .object([
                        ("Name", .string("Engine")), ("Version", .string(Self.clabVersion + "-clab")),
                        ("Details", details),
                    ])
                ])
            ),
            ("Version", .string(Self.clabVersion + "-clab")), ("ApiVersion", .string(Self.apiVersion)),
            ("MinAPIVersion", .string(Self.minAPIVersion)), ("GitCommit", .string("clab")),
            ("GoVersion", .string("swift")), ("Os", .string("linux")), ("Arch", .string("amd64")),
            ("KernelVersion", .string(kernel)), ("BuildTime", .string("")),
        ])
    }

    func info() -> JSON {
        let records = ContainerRecord.all(in: layout)
        let statuses = records.map(\.status)
        let kernel = Self.kernel
        let host = FS.read("/proc/sys/kernel/hostname")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let images = Set(ImageStore(layout: layout).refs().map(\.id)).count
        let memory = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        return .object([
            ("ID", .string("clab")), ("Containers", .int(records.count)),
            ("ContainersRunning", .int(statuses.filter { $0 == .running }.count)),
            ("ContainersPaused", .int(statuses.filter { $0 == .paused }.count)),
            ("ContainersStopped", .int(statuses.filter { $0 == .stopped || $0 == .created }.count)),
            ("Images", .int(images)), ("Driver", .string("overlay")), ("DriverStatus", .array([])),
            (
                "Plugins",
                .object([
                    ("Volume", .strings(["local"])), ("Network", .strings(["bridge", "host", "none"])),
                    ("Authorization", .null), ("Log", .strings(["clab"])),
                ])
            ),
            ("MemoryLimit", .bool(true)), ("SwapLimit", .bool(true)), ("CpuCfsPeriod", .bool(true)),
            ("CpuCfsQuota", .bool(true)), ("CPUShares", .bool(true)), ("CPUSet", .bool(false)),
            ("PidsLimit", .bool(true)), ("IPv4Forwarding", .bool(true)), ("Debug", .bool(false)),
            ("NFd", .int(0)), ("OomKillDisable", .bool(false)), ("NGoroutines", .int(0)),
            ("SystemTime", .string(Self.rfc3339(EventLog.nowMilliseconds()))), ("LoggingDriver", .string("clab")),
            ("CgroupDriver", .string("cgroupfs")),
            ("CgroupVersion", .string(FS.exists("/sys/fs/cgroup/cgroup.controllers") ? "2" : "1")),
            ("NEventsListener", .int(0)), ("KernelVersion", .string(kernel)),
            ("OperatingSystem", .string(Self.osName())), ("OSVersion", .string("")), ("OSType", .string("linux")),
            ("Architecture", .string("x86_64")), ("IndexServerAddress", .string("")),
            (
                "RegistryConfig",
                .object([
                    ("IndexConfigs", .object([])), ("InsecureRegistryCIDRs", .strings(["127.0.0.0/8"])),
                    ("Mirrors", .array([])),
                ])
            ),
            ("NCPU", .int(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))), ("MemTotal", .int(memory)),
            ("DockerRootDir", .string(layout.root)), ("HttpProxy", .string("")), ("HttpsProxy", .string("")),
            ("NoProxy", .string("")), ("Name", .string(host)), ("Labels", .array([])),
            ("ExperimentalBuild", .bool(false)), ("ServerVersion", .string(Self.clabVersion + "-clab")),
            ("Runtimes", .object([("clab", .object([("path", .string(clab))]))])),
            ("DefaultRuntime", .string("clab")),
            (
                "Swarm",
                .object([
                    ("NodeID", .string("")), ("NodeAddr", .string("")), ("LocalNodeState", .string("inactive")),
                    ("ControlAvailable", .bool(false)), ("Error", .string("")), ("RemoteManagers", .null),
                ])
            ),
            ("LiveRestoreEnabled", .bool(true)), ("Isolation", .string("")), ("InitBinary", .string("clab-init")),
            ("ContainerdCommit", .object([("ID", .string(""))])), ("RuncCommit", .object([("ID", .string(""))])),
            ("InitCommit", .object([("ID", .string(""))])),
            ("SecurityOptions", .strings(["name=seccomp,profile=builtin", "name=userns"])),
            ("Warnings", .array([])),
        ])
    }

    static var kernel: String {
        FS.read("/proc/sys/kernel/osrelease")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    static func osName() -> String {
        for line in (FS.read("/etc/os-release") ?? "").split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
            return String(line.dropFirst(12)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return "Linux"
    }

    /// 2025-01-02T03:04:05.678Z
    static func rfc3339(_ milliseconds: Int) -> String { UTCTime.milliseconds(milliseconds) }

    // MARK: - errors

    /// A container by name, id or id prefix, or 404 as Docker words it.
    func record(_ key: String) throws -> ContainerRecord {
        do {
            return try ContainerRecord.find(key, in: layout)
        } catch let error as ClabError {
            if error.message.hasPrefix("no container") { throw APIError(.notFound, "No such container: \(key)") }
            throw APIError(.badRequest, error.message)
        }
    }

    /// A lifecycle refusal is a conflict (409); anything else clab says is the server's (500).
    static func mapped(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as ClabError {
            let conflict = [
                "is stopped", "is running", "is paused", "is created", "already", "stop it first", "is stopping",
            ]
            let status: HTTPResponseStatus =
                conflict.contains(where: error.message.contains) ? .conflict : .internalServerError
            throw APIError(status, error.message)
        }
    }
}
