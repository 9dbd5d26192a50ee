import ClabCgroups
import ClabDevices
import ClabHost
import ClabImages
import ClabNetwork
import ClabSpec
import ClabSys
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
    ///
    /// The order of the stages' host halves (each in `Stages/N-Name.swift`): first the checks of
    /// what the caller gave (the command, `-v`, 12's options, 7's reachable state, `--name`,
    /// 11's `--net`), then the shared state and images (caches, kept across containers), then
    /// the spec stage by stage (7's mapped root, 9's image config, 10's volumes, 9's overlay,
    /// 11, 12), the spec's own validation, 8's cgroup placement, and last what belongs to this
    /// container alone: its named volumes and names, once nothing else can fail.
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
        try Self.checkVolumeRequests(request.volumes)
        let hardening = try hardeningPlan(request)
        let userNamespace = try planUserNamespace(request)
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
        let mapping = userNamespace ? try mapRoot(request, imageRoot: &imageRoot, log: log) : nil
        var env = ContainerSpec.baseEnv(stage: request.stage, hostname: hostname)
        var command = ["/bin/sh"]
        if let given = request.command, !given.isEmpty {
            command = given
        } else {
            env += ContainerSpec.defaultShellEnv(stage: request.stage)
        }
        let image = try imageConfig(request)
        image?.apply(to: &env, command: &command, given: request.command)
        env = Env.setting(request.env, in: env)
        try ContainerSpec.checkExec(command: command, env: env)
        var spec = ContainerSpec(
            id: id, stageNumber: request.stage.number, hostname: hostname, imageRoot: imageRoot,
            bundleDir: layout.containerDir(id), command: command, env: env, idMapping: mapping)
        if request.stage.mountsVolumes { spec.volumes = try volumeSpecs(request.volumes) }
        let keptLayers = try image.map { try overlay($0, request, mapping: mapping, spec: &spec, log: log) } ?? []
        if let networkPlan { try applyNetwork(networkPlan, to: &spec) }
        spec.hardening = hardening
        // The last gate: every rule on the finished spec, before a cgroup or a kept name exists.
        try spec.validate()
        let cgroups = request.stage.limitsResources ? try placeCgroups(request, id: id, spec: &spec) : nil
        var prepared = PreparedContainer(
            spec: spec, cgroup: cgroups?.cgroup, cgroupLayout: cgroups?.layout, notes: cgroups?.notes ?? [])
        prepared.network = networkPlan
        prepared.networks = networkPlan == nil ? nil : networks
        prepared.name = request.name
        if let mapping { prepared.notes += Self.subordinateWarnings(mapping) }
        // Last, once nothing else can fail: the named volumes, made on first use; then the
        // names, atomically (two runs at once: one wins).
        let madeVolumes = request.stage.mountsVolumes ? try createVolumes(request.volumes, log: log) : []
        do {
            if let name = request.name { try ContainerNames.reserve(name, id: id, layout: layout) }
            if let name = request.keepName {
                do {
                    _ = try KeptContainers(layout: layout).reserve(
                        name, id: id, image: request.image, layers: keptLayers)
                } catch {
                    if let given = request.name { ContainerNames.release(given, id: id, layout: layout) }
                    throw error
                }
            }
        } catch {
            removeVolumes(madeVolumes)
            throw error
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
            result = RunResult(status: status, counters: Self.counters(prepared.cgroup))
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
        if let cgroup = prepared.cgroup { try Self.hookCgroups(cgroup, into: container) }
        if let oci = prepared.spec.oci { OCIBundle.hookLifecycle(oci, spec: prepared.spec, into: container) }
        return container
    }

    /// Everything the container and its cgroup left on the host.
    public static func remove(_ container: Container, _ prepared: PreparedContainer) {
        if let name = prepared.name { ContainerNames.release(name, id: container.spec.id, layout: container.layout) }
        container.cleanup()
        removeCgroups(prepared.cgroup, of: container)
        unhookNetwork(prepared.network, networks: prepared.networks, containerID: container.spec.id)
    }
}
