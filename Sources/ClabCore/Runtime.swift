import ClabDevices
import ClabKernel
import ClabNetwork
import FoundationEssentials
import Glibc

/// What a user asks for with `clab step N`.
public struct RunRequest: Sendable {
    public var stage: Stage
    /// nil: the interactive shell.
    public var command: [String]?
    public var hostname: String?
    public var idMapping: IDMapping
    /// From stage 8 on (nil: the defaults).
    public var limits: CgroupLimits?
    /// A path from each cgroup hierarchy's root, instead of `clab` beneath the caller's cgroup.
    public var cgroupParent: String?
    /// From stage 9: the image (NAME[:TAG]) whose layers form the root.
    public var image: String = ImageStore.baseName
    /// From stage 9, for `clab image build`: these layers instead of the image's, and the
    /// writable layer in this directory, kept.
    public var layersOverride: [String]?
    public var rwDir: String?
    /// From stage 9: keep the writable layer after exit under this name (`clab diff`, `clab rm`).
    public var keepName: String?
    /// From stage 10: `-v` mounts.
    public var volumes: [VolumeRequest] = []
    /// From stage 9: the container's name (`--name`): `clab ps`, `--net container:NAME`, and
    /// the name other containers on a user network find it by.
    public var name: String?
    /// From stage 11: `--net` (nil: the default bridge) and `-p` ports.
    public var network: NetworkMode?
    public var publish: [PortPublish] = []
    /// `-e NAME=VALUE`: set last, over the stage's and the image's environment.
    public var env: [String] = []
    /// From stage 12: capabilities, seccomp, no_new_privs, read-only root, `--userns host`.
    public var security = SecurityRequest()

    public init(
        stage: Stage, command: [String]? = nil, hostname: String? = nil, idMapping: IDMapping = .defaultRange,
        limits: CgroupLimits? = nil, cgroupParent: String? = nil
    ) {
        self.stage = stage
        self.command = command
        self.hostname = hostname
        self.idMapping = idMapping
        self.limits = limits
        self.cgroupParent = cgroupParent
    }
}

/// A container decided but not started: its spec, and from stage 8 its cgroup.
public struct PreparedContainer: Sendable {
    public var spec: ContainerSpec
    public var cgroup: ContainerCgroup?
    /// From stage 8: which cgroup layout the host has, for the banner and `clab check 8`.
    public var cgroupLayout: String?
    /// Things worth one line to the user (a cgroup placement fallback).
    public var notes: [String]
    /// From stage 11: the network model and what goes with it.
    public var network: NetworkPlan?
    /// Where networks live (for the plumbing and its removal).
    public var networks: NetworkStore?
    public var name: String?
}

/// How a container ended, and what its limits did.
public struct RunResult: Sendable {
    public let status: ExitStatus
    public let counters: CgroupCounters?

    public init(status: ExitStatus, counters: CgroupCounters?) {
        self.status = status
        self.counters = counters
    }

    /// One line per limit that struck, from the kernel's counters.
    public var outcomes: [String] {
        counters.map { ContainerCgroup.outcomes($0, commandKilled: status.signal == SIGKILL) } ?? []
    }
}

/// The entry point to run containers: a state layout plus the binary that serves as init.
public struct Runtime: Sendable {
    public let layout: StateLayout
    public let initPath: String
    /// The parent of every container's cgroups when a request names none (`--cgroup-parent` on
    /// `check`, `tour`, `image build`, `lab check`, `trace`): one per student on a shared host.
    public var cgroupParent: String?

    public init(layout: StateLayout, initPath: String = Runtime.defaultInitPath) {
        self.layout = layout
        self.initPath = initPath
    }

    /// `clab-init` beside the running clab binary (SwiftPM and `make install` put them together).
    public static var defaultInitPath: String {
        Path.dirname(Resources.executablePath()) + "/clab-init"
    }

    public var images: ImageStore { ImageStore(layout: layout) }

    /// Checks that do not depend on the request: root, and a usable state directory.
    public static func requireRoot() throws {
        guard geteuid() == 0 else {
            throw ClabError(
                "clab must run as root: it creates namespaces, mounts and cgroups (try: sudo clab ...)", exitCode: 1)
        }
    }

    /// Turns a request into a spec: validates it, prepares the state directory and the image.
    /// Nothing container-specific exists on the host until `Container.start`.
    public func prepare(_ request: RunRequest, log: (String) -> Void) throws -> PreparedContainer {
        if let hostname = request.hostname { try ContainerSpec.validateHostname(hostname) }
        for entry in request.env where entry.firstIndex(of: "=").map({ $0 == entry.startIndex }) ?? true {
            throw ClabError("-e \(entry): use -e NAME=VALUE", exitCode: 2)
        }
        let id = ContainerSpec.newID()
        let hostname = request.hostname ?? id
        // What the caller gave, before the state directory is touched: its strings reach
        // execve and mount in the container.
        if let command = request.command, !command.isEmpty {
            try ContainerSpec.checkExec(
                command: command, env: ContainerSpec.baseEnv(stage: request.stage, hostname: hostname))
        }
        for v in request.volumes {
            try ContainerSpec.checkVolumeTarget(v.target, "-v: the target")
            if case .bind(let path) = v.source { try ContainerSpec.checkText(path, "-v: the bind source") }
        }
        let hardening = try hardeningPlan(request)
        // `--userns host` (stage 12): container root is the host's root, so only clab's own
        // image may run that way: an imported image's programs never get host credentials.
        let userNamespace = request.stage.has(.user) && !request.security.hostUserNamespace
        if userNamespace, let why = Host.userNamespacesAvailable() {
            throw ClabError("stage 7 needs user namespaces, but \(why)")
        }
        if userNamespace {
            // Before anything is made or built: a state directory container root cannot reach
            // is refused at once, and leaves nothing behind.
            try Self.requireSearchable(layout.containersDir)
            try Self.requireSearchable(initPath)
        }
        if let name = request.name {
            try KeptContainers.validateName(name)
            // A detached container keeps its name until `clab rm`, stopped or not (as Docker's).
            if let other = ContainerRecord.all(in: layout).first(where: {
                $0.state.name == name && ($0.isDetached || $0.status != .stopped)
            }) {
                throw ClabError(
                    "a container is already named \(name) (\(other.status.rawValue), id \(other.id)): pick another --name, or `clab rm \(other.status == .stopped ? "" : "-f ")\(name)`",
                    exitCode: 2)
            }
        }
        let networkPlan = try planNetwork(request)
        try layout.prepare()
        try images.ensureBase(log: log)
        var imageRoot = images.rootfs(ImageStore.baseName)
        var mapping: IDMapping?
        if userNamespace {
            mapping = request.idMapping
            if request.stage.layersImage {
                // The root will be an overlay of the layers' shifted copies (made below).
                try Self.requireSearchable(images.layerStore.dir)
            } else {
                imageRoot = try images.ensureShifted(ImageStore.baseName, base: request.idMapping.host, log: log)
                try Self.requireSearchable(imageRoot)
            }
        }
        var env = ContainerSpec.baseEnv(stage: request.stage, hostname: hostname)
        var command: [String]
        if let given = request.command, !given.isEmpty {
            command = given
        } else {
            command = ["/bin/sh"]
            env += ContainerSpec.defaultShellEnv(stage: request.stage)
        }
        // From stage 9 the image's own settings (hostile: it may be imported): its
        // environment, and its default command. Checked before a volume or layer is made.
        var image: ImageConfig?
        if request.stage.layersImage {
            // `--userns host`: the built-in image itself, whatever busybox:latest names now.
            let config =
                request.security.hostUserNamespace
                ? try images.builtInConfig() : try images.resolve(request.image).config
            try config.validate("image \((try? ImageRef.parse(request.image))?.description ?? request.image)")
            env = Env.setting(config.env, in: env)
            if request.command == nil || request.command?.isEmpty == true, let cmd = config.cmd, !cmd.isEmpty {
                command = cmd
            }
            image = config
        }
        env = Env.setting(request.env, in: env)
        try ContainerSpec.checkExec(command: command, env: env)
        var spec = ContainerSpec(
            id: id, stageNumber: request.stage.number, hostname: hostname, imageRoot: imageRoot,
            bundleDir: layout.containerDir(id), command: command, env: env, idMapping: mapping)
        var prepared = PreparedContainer(spec: spec, cgroup: nil, cgroupLayout: nil, notes: [])
        var keptLayers: [String] = []
        if request.stage.mountsVolumes {
            let volumes = VolumeStore(layout: layout)
            for v in request.volumes {
                switch v.source {
                case .named(let name):
                    if try volumes.create(name) { log("created volume '\(name)'") }
                    spec.volumes.append(
                        VolumeSpec(source: volumes.dataPath(name), target: v.target, readOnly: v.readOnly))
                case .bind(let path):
                    guard FS.exists(path) else {
                        throw ClabError(
                            "-v: the bind source \(path) does not exist: create it first (clab never creates it for you)"
                        )
                    }
                    // Container root is uid 100000 on the host: it must be able to reach the source.
                    try Self.requireSearchable(path, otherwise: "or bind a directory everyone can reach")
                    spec.volumes.append(VolumeSpec(source: path, target: v.target, readOnly: v.readOnly))
                }
            }
        }
        if let image, request.stage.layersImage {
            let layers = request.layersOverride ?? image.layers
            spec.workdir = image.workdir
            // Under `--userns host` the layers as stored (owned by root), else the mapped copies.
            let lowers = try layers.reversed().map { digest in
                try mapping.map { try images.layerStore.shifted(digest, base: $0.host, log: log) }
                    ?? images.layerStore.path(digest)
            }
            // A kept container's writable layer lives under kept/<name>, claimed last (below),
            // once nothing else can fail.
            let rw =
                request.rwDir ?? request.keepName.map { KeptContainers(layout: layout).path($0) }
                ?? layout.containerDir(id)
            spec.overlay = OverlaySpec(lowers: lowers, upper: rw + "/upper", work: rw + "/work")
            keptLayers = layers
        }
        if let networkPlan { try applyNetwork(networkPlan, to: &spec) }
        spec.hardening = hardening
        // The last gate: every rule on the finished spec, before a cgroup or a kept name exists.
        try spec.validate()
        prepared.spec = spec
        if request.stage.limitsResources {
            let driver = try CgroupDriver.detect()
            // Stage 12: Docker's device allow-list (v1 devices controller, v2 BPF program).
            let devices = request.stage.number >= 12 ? DeviceRule.dockerDefault : nil
            let placement = try driver.place(
                id: id, parent: request.cgroupParent ?? cgroupParent, devices: devices != nil)
            let cgroup = ContainerCgroup(
                placement: placement, limits: request.limits ?? CgroupLimits(), deviceRules: devices)
            // Not the freezer: pausing is the host's business, and the container's view stays as it was.
            for (controller, dir) in placement.dirs where controller != "freezer" {
                spec.cgroupMounts[controller] = dir
            }
            prepared = PreparedContainer(
                spec: spec, cgroup: cgroup, cgroupLayout: driver.layout, notes: placement.note.map { [$0] } ?? [])
        }
        prepared.network = networkPlan
        prepared.networks = networkPlan == nil ? nil : networks
        prepared.name = request.name
        if let mapping {
            for owner in Host.subordinateOwners(overlapping: mapping) {
                prepared.notes.append(
                    "warning: \(owner) owns subordinate ids that overlap \(mapping.host)-\(mapping.host + mapping.count - 1) (/etc/subuid or /etc/subgid): that user can act as this container's root on the host (README: Security model)"
                )
            }
        }
        // Last, once nothing else can fail: the name, atomically (two runs at once: one wins).
        if let name = request.name { try ContainerNames.reserve(name, id: id, layout: layout) }
        if let name = request.keepName {
            do {
                _ = try KeptContainers(layout: layout).reserve(name, id: id, image: request.image, layers: keptLayers)
            } catch {
                if let given = request.name { ContainerNames.release(given, id: id, layout: layout) }
                throw error
            }
        }
        return prepared
    }

    /// Start, wait, clean up. Returns how the command ended.
    public func run(
        _ prepared: PreparedContainer, stdio: (Int32, Int32, Int32) = (0, 1, 2), forwardSignals: Bool = false,
        beforeGo: [(pid_t) throws -> Void] = [], onEscalate: ((Int32) -> Void)? = nil
    ) throws -> RunResult {
        let container = try makeContainer(prepared)
        container.beforeGo += beforeGo
        let result: RunResult
        do {
            defer { Self.remove(container, prepared) }
            try container.start(stdio: stdio)
            OCIBundle.afterStart(prepared.spec, pid: container.pid)
            let status = container.wait(forwardSignals: forwardSignals, onEscalate: onEscalate)
            // The counters before the cgroup goes.
            result = RunResult(status: status, counters: prepared.cgroup?.counters())
        }
        // An OCI bundle's poststop hooks, once the container is gone.
        OCIBundle.afterDelete(prepared.spec)
        return result
    }

    /// A Container for the prepared spec, its cgroup (stage 8) made and joined before "go".
    /// Pair with `remove`.
    public func makeContainer(_ prepared: PreparedContainer) throws -> Container {
        let container = Container(spec: prepared.spec, layout: layout, initPath: initPath)
        container.name = prepared.name
        if let plan = prepared.network { try hookNetwork(plan, name: prepared.name, into: container) }
        if let cgroup = prepared.cgroup {
            container.cgroupPlacement = cgroup.placement
            if cgroup.placement.exclusive { container.cgroupLevels = cgroup.missingLevels() }
            try container.prepareState()
            do {
                try cgroup.create()
            } catch {
                container.cleanup()
                throw error
            }
            // Joining a v1 cgroup sleeps for an RCU grace period: it runs beside the network's
            // plumbing (the first hook) and is waited for in the last, before "go".
            let box = BackgroundBox()
            container.beforeGo.insert({ pid in box.call = BackgroundCall { try cgroup.add(pid: pid) } }, at: 0)
            container.beforeGo.append { _ in try box.call?.join() }
        }
        if let oci = prepared.spec.oci { OCIBundle.hookLifecycle(oci, spec: prepared.spec, into: container) }
        return container
    }

    /// Everything the container and its cgroup left on the host.
    public static func remove(_ container: Container, _ prepared: PreparedContainer) {
        if let name = prepared.name { ContainerNames.release(name, id: container.spec.id, layout: container.layout) }
        container.cleanup()
        prepared.cgroup?.remove()
        ContainerCgroup.removeLevels(container.cgroupLevels)
        if case .bridge = prepared.network?.mode { prepared.networks?.detach(containerID: container.spec.id) }
    }

    /// In a user namespace container root is uid 100000 to the host: every directory on the way
    /// to its files must let it search: as "others", or as owner or group 100000 (clab's own
    /// state directories, closed to everyone else). Say so before the kernel says EACCES.
    static func requireSearchable(
        _ path: String, otherwise: String = "or use a --root below a searchable directory"
    ) throws {
        let id = IDMapping.defaultRange.host
        var dir = path
        while dir != "/" && !dir.isEmpty {
            dir = Path.dirname(dir)
            var st = stat()
            guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { continue }
            // The kernel's order: the owner's bits for the owner, else the group's, else others'.
            let bits = st.st_uid == id ? st.st_mode >> 6 : st.st_gid == id ? st.st_mode >> 3 : st.st_mode
            if bits & 0o001 == 0 {
                throw ClabError(
                    "stage 7: container root is uid 100000 on the host and cannot enter \(dir) (mode \(String(st.st_mode & 0o7777, radix: 8))): run `chmod o+x \(dir)` \(otherwise)"
                )
            }
        }
    }
}
