import CShims
import ClabHost
import ClabSeccomp
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// `clab-runtime`: clab's runtime behind the OCI runtime command line, the way runc is driven
/// by conmon (podman) or containerd's shim. The same bundle reader, container start, records,
/// signals and cleanup as `clab run --bundle` and `clab create`; what differs is who stays with
/// the container:
///
///     clab create:        clab ─▶ supervisor (clab-init --supervise) ─▶ init      clab start: "S" on control
///     clab-runtime create: conmon ─▶ clab-runtime (exits) ─▶ init, adopted by conmon  start: "S" on exec.fifo
///
/// conmon is a child subreaper: when `clab-runtime create` exits, its orphaned child (the
/// container's init, set up and waiting) becomes conmon's, which reaps it and keeps its exit
/// status and its output (stdio is conmon's pipes as passed to `create`, or, with
/// `process.terminal`, a pty whose master goes to conmon over `--console-socket`). So nothing
/// of clab runs between the calls: init has no death signal tied to clab-runtime, it waits for
/// `start` on a FIFO in its state directory (runc's exec.fifo), and the record's status comes
/// from init's pid and the events (`ContainerState.ociRuntime`). The host's side (cgroups, the
/// shifted rootfs copy, mounts) goes at `delete`, or at `clab gc` once init is gone.
///
/// The OCI id is the clab container's name (`clab ps` lists them), so it follows clab's name
/// rule: lowercase letters, digits, '_', '.', '-', at most 64 (podman's and runtime-tools' ids fit).
public struct OCIRuntime: Sendable {
    public let layout: StateLayout
    public let initPath: String

    /// `<container dir>/oci.json`: the bundle, its annotations and the creation time, for `state`.
    public static let recordFile = "oci.json"
    static let fifoName = "exec.fifo"

    public init(layout: StateLayout, initPath: String = Runtime.defaultInitPath) {
        self.layout = layout
        self.initPath = initPath
    }

    /// What `create` (and `run`) take besides the id.
    public struct CreateOptions: Sendable {
        public var bundle: String
        public var pidFile: String?
        public var consoleSocket: String?

        public init(bundle: String, pidFile: String? = nil, consoleSocket: String? = nil) {
            self.bundle = bundle
            self.pidFile = pidFile
            self.consoleSocket = consoleSocket
        }
    }

    // MARK: - ids and records

    static func checkID(_ id: String) throws {
        do {
            try KeptContainers.validateName(id)
        } catch {
            throw ClabError(
                "container id '\(id)' is not valid: clab-runtime ids are clab container names (lowercase letters, digits, '_', '.', '-'; at most 64)",
                exitCode: 1)
        }
    }

    /// The clab-runtime container with this id (exactly: no prefixes, no clab-made names).
    public func find(_ id: String) throws -> ContainerRecord {
        try Self.checkID(id)
        if let record = ContainerRecord.all(in: layout).first(where: {
            $0.state.name == id && $0.state.ociRuntime == true
        }) {
            return record
        }
        throw ClabError("container \(id) does not exist", exitCode: 1)
    }

    /// Every clab-runtime container of this state root.
    public func all() -> [ContainerRecord] {
        ContainerRecord.all(in: layout).filter { $0.state.ociRuntime == true && $0.state.name != nil }
    }

    // MARK: - create, start

    /// `create`: the container set up, its init waiting for `start`, and this process free to
    /// exit (init is not tied to it). Returns init's host pid. Nothing is left on failure.
    @discardableResult
    public func create(
        id: String, _ options: CreateOptions, stdio: (Int32, Int32, Int32) = (0, 1, 2), note: (String) -> Void
    )
        throws -> Int32
    {
        try Self.checkID(id)
        try Runtime.requireRoot()
        if all().contains(where: { $0.state.name == id }) {
            throw ClabError("container \(id) already exists: `delete` it first, or pick another id", exitCode: 1)
        }
        let process = try Self.processSettings(bundle: options.bundle)
        if process.terminal && options.consoleSocket == nil {
            throw ClabError(
                "config.json: process.terminal is true: give --console-socket PATH (the pty's master is sent there)",
                exitCode: 1)
        }
        if !process.terminal && options.consoleSocket != nil {
            throw ClabError(
                "--console-socket is only for a terminal: config.json's process.terminal is false", exitCode: 1)
        }
        let runtime = Runtime(layout: layout, initPath: initPath)
        let prepared = try runtime.prepare(bundle: options.bundle, name: id, log: note)
        for line in prepared.notes { note(line) }
        // linux.cgroupsPath is the container's own cgroup (podman's "parent/libpod-<id>"); the
        // levels above it that clab makes are in its record, removed at delete and by gc.
        let container: Container
        do {
            container = try runtime.makeContainer(prepared)
        } catch {
            Runtime.removePrepared(prepared, layout: layout)
            throw error
        }
        container.ociRuntime = true
        container.waitForStart = true
        container.detached = DetachedFields(image: "bundle:" + process.bundle, ports: [])
        let spec = prepared.spec
        let dir = spec.bundleDir
        var master: Int32 = -1
        var slave: Int32 = -1
        func undo() {
            if master >= 0 { close(master) }
            if slave >= 0 { close(slave) }
            Runtime.remove(container, prepared)
            Container.remove(bundleDir: dir)
        }
        do {
            try FS.makeDirectories(dir)
            try Detached.writeFile(spec.wire, to: dir + "/spec.wire")
            try Self.writeRecord(dir: dir, bundle: process.bundle, annotations: process.annotations)
            // Container root opens it (init, before pivot_root): the mapped root owns it.
            guard mkfifo(dir + "/" + Self.fifoName, 0o600) == 0 else { throw SyscallError("mkfifo \(dir)/exec.fifo") }
            if let owner = spec.idMapping?.host {
                guard chown(dir + "/" + Self.fifoName, owner, owner) == 0 else {
                    throw SyscallError("chown \(dir)/exec.fifo")
                }
            }
            if process.terminal {
                (master, slave) = try Detached.openTerminal(owner: spec.idMapping?.host)
                container.terminal = slave
                try container.start(stdio: (slave, slave, slave))
            } else {
                try container.start(stdio: stdio)
            }
        } catch {
            undo()
            throw error
        }
        let pid = container.pid
        do {
            if let socket = options.consoleSocket {
                let name = Self.ptyName(slave)
                guard clab_send_fd_to(socket, master, name) == 0 else {
                    throw ClabError(
                        "--console-socket \(socket): cannot send the pty to it: \(errnoDescription(errno))", exitCode: 1
                    )
                }
            }
            if let pidFile = options.pidFile { try Self.writePidFile(pidFile, pid: pid) }
        } catch {
            Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            undo()
            throw error
        }
        if master >= 0 { close(master) }
        if slave >= 0 { close(slave) }
        EventLog.append(dir: dir, event: "created", detail: "clab-runtime, bundle \(process.bundle)")
        return pid
    }

    /// `start`: the created init goes on to execve the command.
    public func start(id: String) throws {
        let record = try find(id)
        switch record.status {
        case .created: break
        case .stopped: throw ClabError("cannot start container \(id): it has stopped", exitCode: 1)
        case .running, .paused: throw ClabError("cannot start container \(id): it is already running", exitCode: 1)
        }
        let fifo = record.dir + "/" + Self.fifoName
        // Non-blocking: with no reader (init gone) this fails at once (ENXIO) instead of hanging.
        let fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw ClabError("cannot start container \(id): its init is not waiting (\(errnoDescription(errno)))")
        }
        var byte = SyncMessage.start
        let n = write(fd, &byte, 1)
        guard n == 1 else {
            close(fd)
            throw ClabError("cannot start container \(id): write \(fifo): \(errnoDescription(errno))")
        }
        unlink(fifo)
        // Init holds the FIFO until its execve closes it: then the FIFO has no reader, and poll
        // says POLLERR (asked for no event, it waits for just that). So the process is started
        // (runtime-spec: poststart runs after it) when this returns, or has already exited.
        var waiting = pollfd(fd: fd, events: 0, revents: 0)
        var polled: Int32
        repeat { polled = poll(&waiting, 1, 10_000) } while polled < 0 && errno == EINTR
        close(fd)
        EventLog.append(dir: record.dir, event: "started")
        // config.json's poststart hooks, now that the process runs (failures are warnings).
        if let spec = try? record.spec(), let pid = record.state.initPid { OCIBundle.afterStart(spec, pid: pid) }
    }

    // MARK: - state, list

    /// runc's `state` JSON: ociVersion, id, pid, status (created, running, paused, stopped),
    /// bundle, rootfs, created, owner, annotations.
    public func stateJSON(id: String) throws -> String {
        Self.stateJSON(try find(id))
    }

    static func stateJSON(_ record: ContainerRecord, indent: String = "") -> String {
        let meta = Self.readRecord(dir: record.dir)
        let status = record.status
        let quoted = JSONText.quoted
        var lines = [
            "\"ociVersion\": \"1.2.0\"", "\"id\": \(quoted(record.state.name ?? record.id))",
            "\"pid\": \(status == .stopped ? 0 : record.state.initPid ?? 0)", "\"status\": \"\(status.rawValue)\"",
            "\"bundle\": \(quoted(meta.bundle))", "\"rootfs\": \(quoted(meta.rootfs))",
            "\"created\": \(quoted(meta.created))", "\"owner\": \"\"",
        ]
        if !meta.annotations.isEmpty {
            lines.append(
                "\"annotations\": {"
                    + meta.annotations.map { "\(quoted($0.0)): \(quoted($0.1))" }.joined(separator: ", ") + "}")
        }
        return indent + "{\n" + lines.map { indent + "  " + $0 }.joined(separator: ",\n") + "\n" + indent + "}"
    }

    /// `list`: runc's table, or with `json` its JSON array.
    public func list(json: Bool, quiet: Bool) -> String {
        let records = all()
        if quiet { return records.compactMap(\.state.name).map { $0 + "\n" }.joined() }
        if json {
            return "[" + records.map { Self.stateJSON($0).replacing("\n", with: "") }.joined(separator: ",") + "]\n"
        }
        func pad(_ s: String, _ n: Int) -> String {
            s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
        }
        var out = pad("ID", 66) + pad("PID", 9) + pad("STATUS", 10) + pad("BUNDLE", 40) + pad("CREATED", 32) + "OWNER\n"
        for r in records {
            let meta = Self.readRecord(dir: r.dir)
            let status = r.status
            out +=
                ShownText.oneLine(
                    pad(r.state.name ?? r.id, 66) + pad("\(status == .stopped ? 0 : r.state.initPid ?? 0)", 9)
                        + pad(status.rawValue, 10) + pad(meta.bundle, 40) + pad(meta.created, 32) + "root") + "\n"
        }
        return out
    }

    /// `ps`: the container's processes (host pids), from its cgroup.
    public func processes(id: String) throws -> [Int32] {
        let record = try find(id)
        guard record.status != .stopped else { throw ClabError("container \(id) is not running", exitCode: 1) }
        return Self.cgroupPids(record)
    }

    static func cgroupPids(_ record: ContainerRecord) -> [Int32] {
        for dir in record.cgroupDirs {
            if let text = FS.read(dir + "/cgroup.procs") {
                return text.split(separator: "\n").compactMap { Int32($0) }
            }
        }
        return record.livePid.map { [$0] } ?? []
    }

    // MARK: - kill, delete

    /// `kill [--all] ID SIG`: to init, or to every process of its cgroup. Created containers
    /// take signals too (runc's rule), stopped ones do not.
    public func kill(id: String, signal sig: Int32, all: Bool) throws {
        let record = try find(id)
        let status = record.status
        guard status != .stopped, let pid = record.state.initPid else {
            throw ClabError("container \(id) is not running", exitCode: 1)
        }
        EventLog.append(dir: record.dir, event: "kill", detail: "signal \(sig)\(all ? " (all)" : "")")
        if all {
            for target in Self.cgroupPids(record) { Glibc.kill(target, sig) }
        } else if !ContainerRecord.signal(pid, startTime: record.state.initStartTime, sig) {
            throw ClabError("container \(id) is not running (\(errnoDescription(errno)))", exitCode: 1)
        }
        // A frozen process takes SIGKILL only once thawed (cgroup v1).
        if sig == SIGKILL && status == .paused { try? record.freezer?.thaw() }
    }

    /// `delete [--force] ID`: a stopped or created container (running ones with `force`,
    /// killed first) and everything it has on the host: cgroups, mounts, its state directory.
    public func delete(id: String, force: Bool) throws {
        let record = try find(id)
        let status = record.status
        if (status == .running || status == .paused) && !force {
            throw ClabError(
                "cannot delete container \(id): it is \(status.rawValue) (stop it, or use delete --force)", exitCode: 1)
        }
        if status != .stopped, let pid = record.state.initPid {
            ContainerRecord.signal(pid, startTime: record.state.initStartTime, SIGKILL)
            if status == .paused { try? record.freezer?.thaw() }
            // Gone from its cgroups once it exits (its parent, conmon, reaps it later).
            Detached.waitGone(pid, startTime: record.state.initStartTime, seconds: 10)
        }
        try Detached.remove(record, layout: layout, force: true)
    }

    // MARK: - exec

    /// What `exec` runs: runc's `--process` file (a runtime-spec process object) or its flags.
    public struct ExecOptions: Sendable {
        public var args: [String] = []
        public var env: [String] = []
        public var cwd: String?
        public var user: String?
        public var terminal = false
        public var consoleSocket: String?
        public var pidFile: String?
        public var detach = false

        public init() {}
    }

    /// Reads a `--process` file: args, env, cwd, terminal, user (uid, gid). Other fields (its
    /// capabilities, rlimits, no_new_privs) are the container's own in clab: an exec gets the
    /// container's hardening, never more.
    public static func readProcessFile(_ path: String, into options: inout ExecOptions) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw ClabError("--process \(path): \(errnoDescription(errno))", exitCode: 1) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count <= OCIBundle.maxConfigBytes {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += buffer[0..<n]
        }
        close(fd)
        let json = try JSON.parse(bytes, source: "--process \(path)")
        guard let fields = json.fields else {
            throw ClabError("--process \(path): not a JSON object", exitCode: 1)
        }
        func strings(_ key: String) throws -> [String]? {
            guard let value = fields[key], value != .null else { return nil }
            guard case .array(let items) = value else {
                throw ClabError("--process: \(key) is not a list", exitCode: 1)
            }
            return try items.map {
                guard case .string(let s) = $0 else {
                    throw ClabError("--process: \(key) holds a non-string", exitCode: 1)
                }
                return s
            }
        }
        options.args = try strings("args") ?? []
        options.env = try strings("env") ?? options.env
        if case .string(let cwd)? = fields["cwd"] { options.cwd = cwd }
        if case .bool(let terminal)? = fields["terminal"] { options.terminal = terminal }
        if let user = fields["user"]?.fields {
            var uid: UInt64 = 0
            var gid: UInt64 = 0
            if case .unsigned(let n)? = user["uid"] { uid = n }
            if case .unsigned(let n)? = user["gid"] { gid = n }
            options.user = "\(uid):\(gid)"
        }
    }

    /// `exec`: a process in the container's namespaces, cgroups and hardening (clab exec's
    /// path). Returns its exit status, or 0 once it runs with `detach` (its pid in --pid-file
    /// is clab-init's, the command's parent, which exits with the command's status).
    public func exec(id: String, _ options: ExecOptions) throws -> Int32 {
        try Runtime.requireRoot()
        let record = try find(id)
        guard !options.args.isEmpty else {
            throw ClabError("exec: no command: give ID CMD [ARGS...] or --process FILE", exitCode: 1)
        }
        if options.terminal && options.consoleSocket == nil && options.detach {
            throw ClabError("exec --tty --detach needs --console-socket (the pty's master is sent there)", exitCode: 1)
        }
        var request = ExecRequest(command: options.args)
        request.env = options.env
        request.workdir = options.cwd
        request.user = options.user
        request.tty = options.terminal
        request.interactive = true
        let session = try ExecSession(record, request, initPath: initPath)
        var master: Int32 = -1
        var slave: Int32 = -1
        defer {
            if master >= 0 { close(master) }
            if slave >= 0 { close(slave) }
        }
        if options.terminal && options.consoleSocket != nil {
            session.ociRuntime = true
            (master, slave) = try Detached.openTerminal(owner: session.spec.idMapping?.host)
        } else if !options.terminal {
            session.ociRuntime = true
        }
        session.detach = options.detach
        try session.start(stdio: slave >= 0 ? (slave, slave, slave) : (0, 1, 2))
        if let socket = options.consoleSocket, master >= 0 {
            guard clab_send_fd_to(socket, master, Self.ptyName(slave)) == 0 else {
                Glibc.kill(session.pid, SIGKILL)
                throw ClabError("--console-socket \(socket): cannot send the pty to it: \(errnoDescription(errno))")
            }
        }
        if let pidFile = options.pidFile { try Self.writePidFile(pidFile, pid: session.pid) }
        if options.detach { return 0 }
        if slave >= 0 {
            close(slave)
            slave = -1
        }
        return session.wait(forwardSignals: true).code
    }

    /// `run` in the foreground: clab-runtime is init's parent; it forwards SIGINT, SIGTERM,
    /// SIGHUP and SIGQUIT and returns the status as a shell shows it.
    public static func waitForChild(_ pid: Int32) -> Int32 {
        clab_forward_signals_to(pid)
        defer { clab_forward_signals_reset() }
        return ExitStatus.reap(pid).code
    }

    // MARK: - pause, resume

    public func pause(id: String) throws { try find(id).pause() }
    public func resume(id: String) throws { try find(id).unpause() }

    // MARK: - helpers

    /// What `create` reads of config.json itself (the rest is Runtime.prepare(bundle:)'s).
    struct ProcessSettings {
        var bundle: String
        var terminal: Bool
        var annotations: [(String, String)]
    }

    static func processSettings(bundle dir: String) throws -> ProcessSettings {
        try ContainerSpec.checkText(dir, "--bundle")
        guard let real = realpath(dir, nil) else {
            throw ClabError("--bundle \(dir): \(errnoDescription(errno))", exitCode: 1)
        }
        let bundle = String(cString: real)
        free(real)
        let config = try OCIBundle.readConfig(bundle)
        var terminal = false
        var annotations: [(String, String)] = []
        if let t = config["process"]["terminal"].bool { terminal = t }
        if let given = config["annotations"].fields {
            for key in given.keys.sorted() { if case .string(let v)? = given[key] { annotations.append((key, v)) } }
        }
        return ProcessSettings(bundle: bundle, terminal: terminal, annotations: annotations)
    }

    static func writeRecord(dir: String, bundle: String, annotations: [(String, String)]) throws {
        let record = JSON.object([
            ("bundle", .string(bundle)), ("created", .string(rfc3339Now())),
            ("annotations", .object(annotations.map { ($0.0, .string($0.1)) })),
        ])
        let text = record.text + "\n"
        try FS.write(text, to: dir + "/" + recordFile, mode: 0o600)
    }

    struct RecordMeta {
        var bundle = ""
        var rootfs = ""
        var created = ""
        var annotations: [(String, String)] = []
    }

    static func readRecord(dir: String) -> RecordMeta {
        var meta = RecordMeta()
        guard let text = FS.read(dir + "/" + recordFile),
            let fields = (try? JSON.parse(Array(text.utf8), source: recordFile))?.fields
        else { return meta }
        if case .string(let b)? = fields["bundle"] { meta.bundle = b }
        if case .string(let c)? = fields["created"] { meta.created = c }
        if let a = fields["annotations"]?.fields {
            for key in a.keys.sorted() { if case .string(let v)? = a[key] { meta.annotations.append((key, v)) } }
        }
        // root.path as config.json says it now (absolute, or relative to the bundle).
        if let path = (try? OCIBundle.readConfig(meta.bundle))?["root"]["path"].string {
            meta.rootfs = path.hasPrefix("/") ? path : meta.bundle + "/" + path
        }
        return meta
    }

    /// 2026-01-02T03:04:05.123456789Z, as runc writes `created`.
    public static func rfc3339Now() -> String { UTCTime.nowNanoseconds() }

    /// The pid file, atomically (a reader sees no file or the whole number): written beside it
    /// and renamed over it, as runc does.
    static func writePidFile(_ path: String, pid: Int32) throws {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let temporary = Path.dirname(absolute) + "/." + Path.basename(absolute) + ".tmp-\(getpid())"
        do {
            // O_EXCL: the name is predictable, and in a shared directory a file someone made
            // there first would keep its owner after the rename (and so be theirs to rewrite).
            var fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
            if fd < 0 && errno == EEXIST, unlink(temporary) == 0 {
                fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
            }
            guard fd >= 0 else { throw SyscallError("open \(temporary)") }
            defer { close(fd) }
            try FS.writeAll(fd, Array("\(pid)".utf8), what: temporary)
            guard rename(temporary, absolute) == 0 else { throw SyscallError("rename \(temporary) \(absolute)") }
        } catch let error as SyscallError {
            unlink(temporary)
            throw ClabError("--pid-file \(path): \(error)", exitCode: 1)
        }
    }

    /// /dev/pts/N of a pty slave (sent with the master, as runc does; conmon ignores it).
    static func ptyName(_ slave: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/self/fd/\(slave)", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }
}

extension Runtime {
    /// A prepared container never made: what `prepare` reserved (its name, a shifted rootfs copy
    /// in its directory) goes.
    static func removePrepared(_ prepared: PreparedContainer, layout: StateLayout) {
        if let name = prepared.name { ContainerNames.release(name, id: prepared.spec.id, layout: layout) }
        Container.remove(bundleDir: prepared.spec.bundleDir)
    }
}
