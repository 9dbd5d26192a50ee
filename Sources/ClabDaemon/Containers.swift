import CShims
import ClabHost
import ClabImages
import ClabNetwork
import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Glibc
import NIOCore
import NIOHTTP1

/// /containers/...: list, create, inspect, start, wait, attach, resize, stop, kill, remove, logs.
extension Engine {
    func containers(_ request: Request, _ parts: [String], _ unsupported: () -> APIError) throws -> Routed {
        let method = request.method
        if parts == ["json"] && method == .GET { return .reply(.json(.ok, try list(request))) }
        if parts == ["create"] && method == .POST { return .reply(try create(request)) }
        guard let key = parts.first else { throw unsupported() }
        let action = parts.count > 1 ? parts[1] : ""
        guard parts.count <= 2 else { throw unsupported() }
        switch (method, action) {
        case (.GET, "json"):
            return .reply(.json(.ok, inspect(try record(key))))
        case (.POST, "start"):
            let record = try record(key)
            if record.status == .running { return .reply(.empty(.notModified)) }
            try Self.mapped { try record.start(layout: layout) }
            return .reply(.empty(.noContent))
        case (.POST, "stop"):
            let record = try record(key)
            if record.status == .stopped { return .reply(.empty(.notModified)) }
            let timeout = request.query["t"].flatMap { Int($0) } ?? 10
            // Bounded: a stop holds one of the engine's threads for its whole grace period.
            guard (0...3600).contains(timeout) else {
                throw APIError(.badRequest, "t=\(timeout): give seconds, 0 to 3600")
            }
            try Self.mapped { try record.stop(timeout: timeout) }
            return .reply(.empty(.noContent))
        case (.POST, "kill"):
            let record = try record(key)
            let signal = try Self.signal(request.query["signal"] ?? "KILL")
            try Self.mapped { try record.kill(signal: signal) }
            return .reply(.empty(.noContent))
        case (.POST, "pause"):
            let record = try record(key)
            try Self.mapped { try record.pause() }
            return .reply(.empty(.noContent))
        case (.POST, "unpause"):
            let record = try record(key)
            try Self.mapped { try record.unpause() }
            return .reply(.empty(.noContent))
        case (.DELETE, ""):
            let record = try record(key)
            if request.flag("v") || request.flag("link") {
                throw APIError(
                    .notImplemented, "clab's daemon removes no volumes with a container (v=1): `clab volume rm`")
            }
            try Self.mapped { try Detached.remove(record, layout: layout, force: request.flag("force")) }
            autoRemove.withLock { _ = $0.remove(record.id) }
            pruneExecs()
            return .reply(.empty(.noContent))
        case (.POST, "wait"):
            return .reply(try wait(try record(key), condition: request.query["condition"] ?? "not-running"))
        case (.POST, "resize"):
            let record = try record(key)
            let (rows, cols) = try Self.size(request)
            try Self.mapped { try record.sendControl("W \(rows) \(cols)") }
            return .reply(.empty(.ok))
        case (.GET, "logs"):
            return .reply(try logs(try record(key), request))
        case (.POST, "attach"):
            return .attach(try attachPlan(try record(key), request))
        case (.POST, "exec"):
            return .reply(try execCreate(try record(key), request))
        default:
            throw unsupported()
        }
    }

    static func size(_ request: Request) throws -> (UInt16, UInt16) {
        guard let rows = request.query["h"].flatMap({ UInt16($0) }),
            let cols = request.query["w"].flatMap({ UInt16($0) })
        else { throw APIError(.badRequest, "resize needs h= and w= (rows and columns, 0-65535)") }
        return (rows, cols)
    }

    static func signal(_ text: String) throws -> Int32 {
        let names: [String: Int32] = [
            "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "KILL": SIGKILL, "USR1": SIGUSR1, "USR2": SIGUSR2,
            "TERM": SIGTERM, "STOP": SIGSTOP, "CONT": SIGCONT, "ALRM": SIGALRM, "WINCH": SIGWINCH,
        ]
        let upper = text.uppercased()
        if let n = Int32(text), n > 0, n < 65 { return n }
        if let n = names[upper.hasPrefix("SIG") ? String(upper.dropFirst(3)) : upper] { return n }
        throw APIError(.badRequest, "signal \(text): not a signal; give a number (1-64) or a name such as TERM")
    }

    // MARK: - list and inspect

    /// What the daemon kept of a container it created (nil for one made by `clab run -d`).
    func meta(_ record: ContainerRecord) -> JSON? {
        guard let text = FS.read(record.dir + "/" + Detached.daemonFile) else { return nil }
        return try? JSON.parse(Array(text.utf8))
    }

    static func dockerState(_ status: LifecycleStatus) -> String {
        switch status {
        case .created: return "created"
        case .running: return "running"
        case .paused: return "paused"
        case .stopped: return "exited"
        }
    }

    func list(_ request: Request) throws -> JSON {
        let all = request.flag("all")
        var wanted: [(String, [String])] = []
        if let text = request.query["filters"], !text.isEmpty {
            for (key, value) in try JSON.parse(Array(text.utf8)).object ?? [] {
                guard ["id", "name", "status"].contains(key) else {
                    throw APIError(.badRequest, "filter \(key): clab's daemon filters by id, name and status only")
                }
                // {"name": {"web": true}} or {"name": ["web"]}
                let values = value.object?.map(\.0) ?? value.stringList ?? []
                wanted.append((key, values))
            }
        }
        let now = EventLog.nowMilliseconds()
        let store = ImageStore(layout: layout)
        // The same rows as `clab ps [-a]`.
        let records = ContainerRecord.all(in: layout).filter { $0.status != .stopped || (all && $0.isDetached) }
        var rows: [JSON] = []
        for record in records {
            let status = record.status
            let state = Self.dockerState(status)
            let name = record.state.name ?? record.id
            let matches = wanted.allSatisfy { key, values in
                switch key {
                case "id": return values.contains { record.id.hasPrefix($0) }
                case "name": return values.contains { name.contains($0) }
                default: return values.contains(state)
                }
            }
            guard matches else { continue }
            let image = record.state.detached?.image ?? "-"
            rows.append(
                .object([
                    ("Id", .string(record.id)), ("Names", .strings(["/" + name])), ("Image", .string(image)),
                    ("ImageID", .string((try? store.resolve(image).id) ?? "")),
                    ("Command", .string(record.state.command ?? "")), ("Created", .int(record.state.created)),
                    ("Ports", ports(record)), ("Labels", meta(record)?["Config"]["Labels"].nonNull ?? .object([])),
                    ("State", .string(state)), ("Status", .string(record.statusText(nowMilliseconds: now))),
                    ("HostConfig", .object([("NetworkMode", .string("bridge"))])),
                    ("NetworkSettings", .object([("Networks", networks(record))])), ("Mounts", .array([])),
                ]))
        }
        return .array(rows)
    }

    func ports(_ record: ContainerRecord) -> JSON {
        .array(
            (record.state.detached?.ports ?? []).compactMap { try? PortPublish.parse($0) }.map { p in
                .object([
                    ("IP", .string(p.hostIP ?? "0.0.0.0")), ("PrivatePort", .int(Int(p.containerPort))),
                    ("PublicPort", .int(Int(p.hostPort))), ("Type", .string(p.proto.rawValue)),
                ])
            })
    }

    func networks(_ record: ContainerRecord) -> JSON {
        guard let address = record.state.address, record.status != .stopped else { return .object([]) }
        return .object([("bridge", .object([("IPAddress", .string(address))]))])
    }

    func inspect(_ record: ContainerRecord) -> JSON {
        let status = record.status
        let meta = meta(record)
        let events = record.events
        let started =
            events.last { $0.name == "started" }.map { Self.rfc3339($0.milliseconds) } ?? "0001-01-01T00:00:00Z"
        let finished =
            status == .stopped
            ? events.last { ["exited", "failed", "lost"].contains($0.name) }.map { Self.rfc3339($0.milliseconds) }
                ?? "0001-01-01T00:00:00Z" : "0001-01-01T00:00:00Z"
        let failure = events.last { $0.name == "failed" }?.detail ?? ""
        let command = (try? record.spec().command) ?? []
        let image = record.state.detached?.image ?? ""
        var config = meta?["Config"] ?? .object([])
        if config["Image"].isZero {
            config = .object([
                ("Hostname", .string(record.id)), ("Tty", .bool(false)), ("OpenStdin", .bool(false)),
                ("Cmd", .strings(command)), ("Image", .string(image)), ("Env", .array([])), ("Labels", .object([])),
            ])
        }
        let portMap: JSON = .object(
            (record.state.detached?.ports ?? []).compactMap { try? PortPublish.parse($0) }.map { p in
                (
                    "\(p.containerPort)/\(p.proto.rawValue)",
                    .array([
                        .object([("HostIp", .string(p.hostIP ?? "0.0.0.0")), ("HostPort", .string("\(p.hostPort)"))])
                    ])
                )
            })
        return .object([
            ("Id", .string(record.id)),
            ("Created", .string(Self.rfc3339(record.state.created * 1000))),
            ("Path", .string(command.first ?? "")), ("Args", .strings(Array(command.dropFirst()))),
            (
                "State",
                .object([
                    ("Status", .string(Self.dockerState(status))),
                    ("Running", .bool(status == .running || status == .paused)),
                    ("Paused", .bool(status == .paused)), ("Restarting", .bool(false)), ("OOMKilled", .bool(false)),
                    ("Dead", .bool(false)), ("Pid", .int(Int(record.livePid ?? 0))),
                    ("ExitCode", .int(Int(record.exitCode ?? (status == .stopped ? 255 : 0)))),
                    ("Error", .string(failure)),
                    ("StartedAt", .string(started)), ("FinishedAt", .string(finished)),
                ])
            ),
            ("Image", .string((try? ImageStore(layout: layout).resolve(image).id) ?? "")),
            ("ResolvConfPath", .string("")), ("HostnamePath", .string("")), ("HostsPath", .string("")),
            ("LogPath", .string(record.dir + "/container.log")),
            ("Name", .string("/" + (record.state.name ?? record.id))),
            ("RestartCount", .int(0)), ("Driver", .string("overlay")), ("Platform", .string("linux")),
            ("MountLabel", .string("")), ("ProcessLabel", .string("")), ("AppArmorProfile", .string("")),
            ("ExecIDs", .null),
            ("HostConfig", meta?["HostConfig"].nonNull ?? .object([("NetworkMode", .string("bridge"))])),
            ("GraphDriver", .object([("Data", .null), ("Name", .string("overlay"))])),
            ("Mounts", .array([])), ("Config", config),
            (
                "NetworkSettings",
                .object([
                    ("Bridge", .string("")), ("SandboxID", .string("")), ("Ports", portMap),
                    ("IPAddress", .string(status == .stopped ? "" : record.state.address ?? "")),
                    ("Networks", networks(record)),
                ])
            ),
            ("ClabStage", .int(record.state.stage)),
        ])
    }

    // MARK: - create

    /// Docker's container configuration as `clab create` arguments. Fields clab has no
    /// equivalent for are refused by name when they are set (the CLI sends every field, most
    /// of them empty); none is silently dropped.
    func createArguments(_ body: JSON, name: String?) throws -> (
        arguments: [String], autoRemove: Bool, size: (Int, Int)?
    ) {
        guard body.object != nil else { throw APIError(.badRequest, "the request body must be a JSON object") }
        var args = ["create"]
        if let rootOption { args += ["--root", rootOption] }
        if let name, !name.isEmpty {
            args += ["--name", name.hasPrefix("/") ? String(name.dropFirst()) : name]
        }
        var command: [String] = []
        var image = ""
        var autoRemove = false
        var size: (Int, Int)?
        func refuse(_ field: String) -> APIError {
            APIError(.badRequest, "\(field) is not supported by clab's daemon (clab has no equivalent): leave it unset")
        }
        func strings(_ value: JSON, _ field: String) throws -> [String] {
            guard let list = value.stringList ?? value.string.map({ [$0] }) else {
                throw APIError(.badRequest, "\(field) must be a list of strings")
            }
            return list
        }
        var tty = false
        var entrypoint: [String] = []
        for (key, value) in body.object ?? [] {
            switch key {
            case "Image":
                guard let text = value.string, !text.isEmpty else { throw APIError(.badRequest, "Image is required") }
                image = text
            case "Cmd": command = try strings(value, "Cmd")
            // Checked by clab create as `-e` is (NAME=VALUE, text execve takes).
            case "Env": for entry in try strings(value, "Env") { args.append("--env=" + entry) }
            case "Entrypoint": entrypoint = try strings(value, "Entrypoint")
            case "Tty":
                tty = value.bool ?? false
                if tty { args.append("-t") }
            case "OpenStdin": if value.bool == true { args.append("-i") }
            case "Hostname": if let h = value.string, !h.isEmpty { args += ["--hostname", h] }
            case "Labels":
                if let stage = value["org.clab.stage"].string { args += ["--stage", stage] }
            // What attach and the host side use; Volumes is checked below.
            case "AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce", "ExposedPorts", "HostConfig",
                "NetworkingConfig", "ArgsEscaped", "Volumes":
                continue
            default:
                if !value.isZero { throw refuse("Config.\(key)") }
            }
        }
        if image.isEmpty { throw APIError(.badRequest, "Image is required") }
        if !body["Volumes"].isZero { throw refuse("Config.Volumes (anonymous volumes)") }
        let host = body["HostConfig"]
        for (key, value) in host.object ?? [] {
            switch key {
            case "Binds":
                for bind in try strings(value, "HostConfig.Binds") {
                    let fields = bind.split(separator: ":", omittingEmptySubsequences: false)
                    if fields.count == 3, fields[2] == "rw" {
                        args += ["-v", fields[0] + ":" + fields[1]]
                    } else if fields.count == 3, fields[2] != "ro" {
                        throw APIError(.badRequest, "-v \(bind): only the :ro and :rw options are supported")
                    } else {
                        args += ["-v", bind]
                    }
                }
            case "PortBindings":
                for (port, bindings) in value.object ?? [] {
                    let (number, proto) =
                        port.split(separator: "/").count == 2
                        ? (String(port.split(separator: "/")[0]), String(port.split(separator: "/")[1]))
                        : (port, "tcp")
                    for binding in bindings.array ?? [] {
                        let hostIP = binding["HostIp"].string ?? ""
                        guard let hostPort = binding["HostPort"].string, !hostPort.isEmpty else {
                            throw APIError(
                                .badRequest,
                                "-p \(port): give the host port (clab picks none for you), e.g. -p 8080:\(number)")
                        }
                        let spec =
                            (hostIP.isEmpty ? "" : hostIP + ":") + hostPort + ":" + number
                            + (proto == "tcp" ? "" : "/" + proto)
                        args += ["-p", spec]
                    }
                }
            case "AutoRemove": autoRemove = value.bool ?? false
            case "NetworkMode":
                let mode = value.string ?? ""
                if !["", "default", "bridge"].contains(mode) { args += ["--net", mode] }
            case "Memory": if let n = value.int, n != 0 { args += ["--memory", "\(n)"] }
            case "MemorySwap":
                if let n = value.int, n != 0 {
                    guard n > 0 else { throw refuse("HostConfig.MemorySwap -1 (unlimited swap)") }
                    args += ["--memory-swap", "\(n)"]
                }
            case "NanoCpus": if let n = value.int, n != 0 { args += ["--cpus", "\(Double(n) / 1e9)"] }
            case "CpuShares": if let n = value.int, n != 0 { args += ["--cpu-shares", "\(n)"] }
            case "PidsLimit":
                if let n = value.int, n != 0 {
                    guard n > 0 else { throw refuse("HostConfig.PidsLimit -1 (no limit)") }
                    args += ["--pids", "\(n)"]
                }
            case "CgroupParent": if let p = value.string, !p.isEmpty { args += ["--cgroup-parent", p] }
            case "CapAdd": for c in try strings(value, "HostConfig.CapAdd") { args += ["--cap-add", c] }
            case "CapDrop": for c in try strings(value, "HostConfig.CapDrop") { args += ["--cap-drop", c] }
            case "ReadonlyRootfs": if value.bool == true { args.append("--read-only") }
            case "SecurityOpt": for o in try strings(value, "HostConfig.SecurityOpt") { args += ["--security-opt", o] }
            case "UsernsMode": if let m = value.string, !m.isEmpty { args += ["--userns", m] }
            case "ConsoleSize":
                if let dims = value.array, dims.count == 2, let h = dims[0].int, let w = dims[1].int, h > 0, w > 0 {
                    size = (h, w)
                }
            case "RestartPolicy":
                let policy = value["Name"].string ?? ""
                if !(policy.isEmpty || policy == "no") { throw refuse("HostConfig.RestartPolicy \(policy)") }
            case "LogConfig":
                let type = value["Type"].string ?? ""
                if !(type.isEmpty || type == "json-file" || type == "local") || !value["Config"].isZero {
                    throw refuse("HostConfig.LogConfig")
                }
            case "IpcMode", "PidMode", "UTSMode", "CgroupnsMode", "Cgroup":
                let mode = value.string ?? ""
                if !(mode.isEmpty || mode == "private" || mode == "shareable") {
                    throw refuse("HostConfig.\(key) \(mode)")
                }
            case "MemorySwappiness":
                // -1: the kernel's default, what the CLI sends unless --memory-swappiness is given.
                if !(value.isZero || value.int == -1) { throw refuse("HostConfig.MemorySwappiness") }
            case "Isolation":
                if !(value.string ?? "").isEmpty && value.string != "default" { throw refuse("HostConfig.Isolation") }
            default:
                if !value.isZero { throw refuse("HostConfig.\(key)") }
            }
        }
        for (network, endpoint) in body["NetworkingConfig"]["EndpointsConfig"].object ?? [] {
            for (key, value) in endpoint.object ?? [] where !value.isZero && key != "NetworkID" && key != "EndpointID" {
                throw refuse("NetworkingConfig.EndpointsConfig.\(network).\(key)")
            }
        }
        args.append(try imageName(image))
        let full = entrypoint + command
        if !full.isEmpty { args += ["--"] + full }
        _ = tty
        return (args, autoRemove, size)
    }

    /// Docker Hub's implicit prefixes dropped: the CLI sends `docker.io/library/mybox` for
    /// `mybox`, and clab's store names images without a registry.
    static func local(_ name: String) -> String {
        for prefix in ["docker.io/library/", "index.docker.io/library/", "docker.io/"] where name.hasPrefix(prefix) {
            return String(name.dropFirst(prefix.count))
        }
        return name
    }

    /// NAME[:TAG], or an image id (prefix) named by a tag that points at it; else 404 (the
    /// docker CLI then tries to pull).
    func imageName(_ given: String) throws -> String {
        let store = ImageStore(layout: layout)
        let text = Self.local(given)
        let bare = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text
        if bare.count >= 12, bare.allSatisfy(\.isHexDigit),
            let ref = store.refs().first(where: { LayerStore.hex($0.id).hasPrefix(bare) })
        {
            return ref.ref.description
        }
        // The built-in image is built on first use, as `clab run` does.
        if let ref = try? ImageRef.parse(text), ref.name == ImageStore.baseName, ref.tag == "latest" {
            try? store.ensureBase(log: { _ in })
        }
        do {
            _ = try store.resolve(text)
        } catch {
            let shown = (try? ImageRef.parse(text).description) ?? text
            throw APIError(.notFound, "No such image: \(shown)")
        }
        return text
    }

    func create(_ request: Request) throws -> Reply {
        let body = try request.json()
        let (arguments, autoRemove, size) = try createArguments(body, name: request.query["name"])
        var notes: [String] = []
        let id: String
        do {
            id = try Detached.launch(clab: clab, arguments: arguments, note: { notes.append($0) })
        } catch let error as ClabError {
            let status: HTTPResponseStatus = error.message.contains("already named") ? .conflict : .badRequest
            throw APIError(status, error.message)
        }
        // Kept beside the record (Detached.recordFiles): `docker inspect` shows it back.
        var kept: [(String, JSON)] = [
            ("Config", .object((body.object ?? []).filter { $0.0 != "HostConfig" && $0.0 != "NetworkingConfig" }))
        ]
        kept.append(("HostConfig", body["HostConfig"]))
        kept.append(("AutoRemove", .bool(autoRemove)))
        try? FS.write(JSON.object(kept).text + "\n", to: layout.containerDir(id) + "/" + Detached.daemonFile)
        // Its supervisor is the `clab create` spawned above (it execve's clab-init): our child.
        watchSupervisor(
            id, pid: (try? ContainerRecord.find(id, in: layout))?.state.clabPid, autoRemove: autoRemove)
        if let size, let record = try? ContainerRecord.find(id, in: layout), body["Tty"].bool == true {
            try? record.sendControl("W \(size.0) \(size.1)")
        }
        return .json(
            .created, .object([("Id", .string(id)), ("Warnings", .strings(notes.filter { $0.hasPrefix("warning") }))]))
    }

    // MARK: - wait, remove on exit

    /// The exit, once the supervisor recorded it and cleaned up (or once the container is
    /// removed, for `condition=removed`). The head goes out at once. Woken by the kernel: the
    /// supervisor's pidfd (it ends after the cleanup), inotify on the containers directory for
    /// a removal, and the client's going (StreamWriter.closedFD).
    func wait(_ record: ContainerRecord, condition: String) throws -> Reply {
        guard ["not-running", "next-exit", "removed", ""].contains(condition) else {
            throw APIError(.badRequest, "condition=\(condition): give not-running, next-exit or removed")
        }
        let id = record.id
        let layout = layout
        return .stream(contentType: "application/json") { writer in
            let gone = [writer.closedFD].filter { $0 >= 0 }
            var code = 0
            if condition == "removed" {
                guard ContainerWatch.waitRemoved(dir: layout.containerDir(id), also: gone) else { return }
                code = self.removedCodes.withLock { $0[id] } ?? 0
            } else {
                while true {
                    guard let now = try? ContainerRecord.find(id, in: layout) else {
                        code = self.removedCodes.withLock { $0[id] } ?? 0
                        break
                    }
                    let supervisor = now.state.clabPid
                    let startTime = now.state.clabStartTime
                    if now.status == .stopped, !ContainerRecord.alive(supervisor, startTime: startTime) {
                        code = Int(now.exitCode ?? 255)
                        break
                    }
                    // The supervisor ends once the exit is recorded and the host's side removed.
                    ContainerWatch.waitGone(supervisor, startTime: startTime, milliseconds: -1, also: gone)
                    try writer.write([])
                }
            }
            try writer.write(Array((JSON.object([("StatusCode", .int(code)), ("Error", .null)]).text + "\n").utf8))
        }
    }

    /// `docker run --rm`: removes each such container once its supervisor ended (the exit
    /// recorded, the host's side removed); and reaps the supervisors this daemon spawned
    /// (`clab create` becomes the supervisor, so it is clabd's child: unreaped, each would stay
    /// a zombie as long as clabd runs). One thread waits in poll(2) on their pidfds and a pipe
    /// that `watchSupervisor` writes to add one. `--rm` containers created before a restart of
    /// the daemon are found again.
    func startReaper() {
        for record in ContainerRecord.all(in: layout) where meta(record)?["AutoRemove"].bool == true {
            autoRemove.withLock { _ = $0.insert(record.id) }
        }
        Self.thread {
            var watched: [String: Int32] = [:]
            while true {
                // Newly added ids: a pidfd each; a supervisor already gone is handled at once.
                var due: [String] = []
                let children = self.children.withLock { $0 }
                for id in self.autoRemove.withLock({ $0 }).union(children.keys) where watched[id] == nil {
                    let record = try? ContainerRecord.find(id, in: self.layout)
                    guard let pid = children[id] ?? record?.state.clabPid else {
                        self.autoRemove.withLock { _ = $0.remove(id) }
                        continue
                    }
                    let fd = clab_pidfd_open(pid)
                    let startTime = children[id] == nil ? record?.state.clabStartTime : nil
                    if fd >= 0 && ContainerRecord.alive(pid, startTime: startTime) {
                        watched[id] = fd
                    } else {
                        if fd >= 0 { Self.reapChild(pidfd: fd) }
                        due.append(id)
                    }
                }
                if due.isEmpty {
                    let ready = ContainerWatch.wait(for: [self.reaperWake.readEnd] + watched.values, milliseconds: -1)
                    if ready.contains(self.reaperWake.readEnd) {
                        var scratch = [UInt8](repeating: 0, count: 64)
                        _ = scratch.withUnsafeMutableBytes { read(self.reaperWake.readEnd, $0.baseAddress, $0.count) }
                    }
                    due = watched.filter { ready.contains($0.value) }.map(\.key)
                }
                for id in due {
                    if let fd = watched.removeValue(forKey: id) { Self.reapChild(pidfd: fd) }
                    self.children.withLock { _ = $0.removeValue(forKey: id) }
                    if self.autoRemove.withLock({ $0.contains(id) }) { self.reap(id) }
                }
            }
        }
    }

    /// Collects the exit of the process behind `pidfd` if it is our child (waitid P_PIDFD: that
    /// process, never another with its pid), then closes it. Not ours: ECHILD, nothing happens.
    static func reapChild(pidfd: Int32) {
        var info = siginfo_t()
        let byPidfd = idtype_t(rawValue: 3)  // P_PIDFD (Linux 5.4)
        while waitid(byPidfd, id_t(pidfd), &info, WEXITED | WNOHANG) < 0 && errno == EINTR {}
        close(pidfd)
    }

    /// Watches a container's supervisor: its removal with `--rm`, its reaping when it is ours.
    func watchSupervisor(_ id: String, pid: Int32?, autoRemove remove: Bool) {
        if let pid { children.withLock { $0[id] = pid } }
        if remove { autoRemove.withLock { _ = $0.insert(id) } }
        reaperWake.fire()
    }

    /// Removes an AutoRemove container whose supervisor ended, keeping its exit code for a
    /// `wait?condition=removed` that asks after.
    private func reap(_ id: String) {
        defer { autoRemove.withLock { _ = $0.remove(id) } }
        guard let record = try? ContainerRecord.find(id, in: layout) else { return }
        guard record.status == .stopped,
            !ContainerRecord.alive(record.state.clabPid, startTime: record.state.clabStartTime)
        else { return }
        removedCodes.withLock { $0[id] = Int(record.exitCode ?? 255) }
        try? Detached.remove(record, layout: layout, force: false)
    }

    // MARK: - logs

    func logs(_ record: ContainerRecord, _ request: Request) throws -> Reply {
        let stdout = request.flag("stdout")
        let stderr = request.flag("stderr")
        guard stdout || stderr else {
            throw APIError(.badRequest, "Bad parameters: you must choose at least one stream")
        }
        if request.flag("timestamps") {
            throw APIError(.notImplemented, "clab keeps no timestamps in its logs (timestamps=1)")
        }
        for key in ["since", "until"] where !(request.query[key] ?? "0").allSatisfy({ $0 == "0" }) {
            throw APIError(.notImplemented, "clab keeps no timestamps in its logs (\(key)=)")
        }
        let tail = request.query["tail"].flatMap { $0 == "all" ? nil : Int($0) }
        guard record.isDetached else {
            throw APIError(
                .badRequest, "container \(record.name) runs in the foreground of its `clab step`: its output is there")
        }
        let tty = meta(record)?["Config"]["Tty"].bool ?? false
        let follow = request.flag("follow")
        let layout = layout
        return .stream(
            contentType: tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream"
        ) { writer in
            // clab's log holds stdout and stderr together: both come out as stdout.
            func send(_ bytes: [UInt8]) throws {
                guard !bytes.isEmpty else { return try writer.write([]) }
                try writer.write(tty ? bytes : Self.frame(1, bytes))
            }
            var held: [UInt8]? = tail == nil ? nil : []
            func flushTail() throws {
                guard let all = held, let tail else { return }
                held = nil
                var lines = all.split(separator: 0x0a, omittingEmptySubsequences: false)
                if lines.last?.isEmpty == true { lines.removeLast() }
                let kept = lines.suffix(max(tail, 0))
                if !kept.isEmpty { try send(Array(kept.joined(separator: [0x0a])) + [0x0a]) }
            }
            try record.copyLog(layout: layout, follow: follow) { bytes in
                if held != nil {
                    // Until the first pause of a follow (or the end): the old part, for tail.
                    if bytes.isEmpty { try flushTail() } else { held? += bytes }
                    return
                }
                try send(bytes)
            }
            try flushTail()
        }
    }

    /// Docker's multiplexed stream framing: stream (1 stdout, 2 stderr), 0, 0, 0, the length
    /// big endian, then the bytes.
    static func frame(_ stream: UInt8, _ bytes: [UInt8]) -> [UInt8] {
        let n = UInt32(bytes.count)
        return [stream, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
            + bytes
    }
}

extension JSON {
    /// nil for null: `a ?? b` on a value that may be null.
    var nonNull: JSON? { if case .null = self { return nil } else { return self } }
}
