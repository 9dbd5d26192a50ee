import ArgumentParser
import ClabCgroups
import ClabNetwork
import ClabRuntime
import ClabSpec
import ClabSys

/// What a container is made of, given to `clab step N` and `clab trace --step N` alike (one
/// option group, so the trace runs exactly the container `clab step` would).
struct ContainerOptions: ParsableArguments {
    @Option(help: "Hostname inside the container (stage 2 on; default: the container id).")
    var hostname: String?

    @OptionGroup var limits: LimitOptions

    @Option(help: "The image whose layers form the root (stage 9 on; default busybox).")
    var image: String?

    @Option(
        help:
            "Name the container (stage 9 on): `clab ps`, --net container:NAME, and its name on a user network; with --keep, the kept layer's name."
    )
    var name: String?

    @Flag(help: "Keep the writable layer: `clab diff NAME`, `clab rm NAME` (stage 9 on, with --name).")
    var keep = false

    @Option(
        name: [.customShort("v"), .customLong("volume")],
        help: "NAME:/path[:ro] (a managed volume) or /host/dir:/path[:ro] (a bind mount); repeatable (stage 10 on).")
    var volume: [String] = []

    @Option(help: "bridge (default), none, host, container:NAME, or a network from `clab network create` (stage 11).")
    var net: String?

    @Option(
        name: [.customShort("p"), .customLong("publish")],
        help: "[HOSTIP:]HOSTPORT:PORT[/udp]: publish a container port on the host; repeatable (stage 11).")
    var publish: [String] = []

    @Option(name: .customLong("cap-add"), help: "Give back a capability, e.g. NET_ADMIN, or ALL (stage 12).")
    var capAdd: [String] = []

    @Option(name: .customLong("cap-drop"), help: "Take away one of Docker's default capabilities, or ALL (stage 12).")
    var capDrop: [String] = []

    @Option(
        name: .customLong("security-opt"),
        help: "seccomp=PROFILE.json (Docker's or OCI's format), seccomp=unconfined, no-new-privileges=false (stage 12)."
    )
    var securityOpt: [String] = []

    @Flag(
        name: .customLong("read-only"), help: "A read-only root filesystem, with a writable tmpfs on /tmp (stage 12).")
    var readOnly = false

    @Option(
        help:
            "host: no user namespace, so root is the host's real root, held back as Docker does (stage 12, busybox only)."
    )
    var userns: String?

    @Option(
        name: .customLong("time-offset"),
        help: "A time namespace: boottime=SECONDS,monotonic=SECONDS (units s/m/h/d; stage 12). See it with `uptime`.")
    var timeOffset: String?

    @Option(
        name: [.customShort("e"), .customLong("env")],
        help: "NAME=VALUE in the container's environment, over the image's; repeatable.")
    var env: [String] = []

    /// The options as plain values (what `request` reads).
    var arguments: ContainerArguments {
        ContainerArguments(
            hostname: hostname, limits: limits.arguments, image: image, name: name, keep: keep, volume: volume,
            net: net, publish: publish, capAdd: capAdd, capDrop: capDrop, securityOpt: securityOpt,
            readOnly: readOnly, userns: userns, timeOffset: timeOffset, env: env)
    }

    func security() throws -> SecurityRequest { try arguments.security() }

    func request(stage: Stage, command: [String]) throws -> RunRequest {
        try arguments.request(stage: stage, command: command)
    }
}

/// ContainerOptions as plain values.
struct ContainerArguments: Sendable {
    var hostname: String?
    var limits: LimitArguments
    var image: String?
    var name: String?
    var keep: Bool
    var volume: [String]
    var net: String?
    var publish: [String]
    var capAdd: [String]
    var capDrop: [String]
    var securityOpt: [String]
    var readOnly: Bool
    var userns: String?
    var timeOffset: String?
    var env: [String] = []

    func security() throws -> SecurityRequest {
        var security = SecurityRequest()
        security.capAdd = capAdd
        security.capDrop = capDrop
        for option in securityOpt { try security.apply(securityOpt: option) }
        security.readOnlyRoot = readOnly
        if let userns {
            guard userns == "host" else {
                throw ClabError("--userns \(userns): only `--userns host` is known (no user namespace)", exitCode: 2)
            }
            security.hostUserNamespace = true
        }
        security.timeOffsets = try timeOffset.map(TimeOffsets.parse)
        return security
    }

    func request(stage: Stage, command: [String]) throws -> RunRequest {
        if hostname != nil && !stage.has(.uts) {
            throw ClabError(
                "--hostname needs stage 2 or later: stage 1 has no UTS namespace, so the name would be the host's",
                exitCode: 2)
        }
        var request = RunRequest(stage: stage, command: command.isEmpty ? nil : command, hostname: hostname)
        request.limits = try limits.parse(for: stage)
        request.cgroupParent = limits.cgroupParent
        if !stage.layersImage,
            let option = [image.map { _ in "--image" }, name.map { _ in "--name" }, keep ? "--keep" : nil].compactMap({
                $0
            }).first
        {
            throw ClabError("\(option) needs stage 9 or later: image layers arrive at stage 9", exitCode: 2)
        }
        if !stage.mountsVolumes && !volume.isEmpty {
            throw ClabError("-v needs stage 10 or later: volumes arrive at stage 10", exitCode: 2)
        }
        if keep && name == nil {
            throw ClabError("--keep needs --name NAME: the name finds it later", exitCode: 2)
        }
        if let name { try KeptContainers.validateName(name) }
        if let image { request.image = image }
        request.name = name
        request.keepName = keep ? name : nil
        request.network = try net.map(NetworkMode.parse)
        request.publish = try publish.map(PortPublish.parse)
        request.volumes = try volume.map(VolumeRequest.parse)
        request.security = try security()
        request.env = env
        return request
    }
}

/// Stage 8's limits. Given below stage 8 they are an error, not silently ignored.
struct LimitOptions: ParsableArguments {
    // .unconditional: "--cpus -1" must reach our check, not be parsed as an option "-1".
    @Option(parsing: .unconditional, help: "Memory limit, e.g. 64M (stage 8; default 256M).")
    var memory: String?

    @Option(name: .customLong("memory-swap"), parsing: .unconditional, help: "Memory plus swap limit (stage 8).")
    var memorySwap: String?

    @Option(parsing: .unconditional, help: "CPU time limit in CPUs, e.g. 0.5 (stage 8).")
    var cpus: String?

    @Option(
        name: .customLong("cpu-shares"), parsing: .unconditional,
        help: "Relative CPU weight, 2-262144 (stage 8; default 1024).")
    var cpuShares: String?

    @Option(parsing: .unconditional, help: "Limit on processes and threads (stage 8; default 512).")
    var pids: String?

    @Option(
        name: .customLong("cgroup-parent"),
        help: "Parent of the container's cgroup: relative to your own cgroup, or absolute (stage 8; default clab).")
    var cgroupParent: String?

    var arguments: LimitArguments {
        LimitArguments(
            memory: memory, memorySwap: memorySwap, cpus: cpus, cpuShares: cpuShares, pids: pids,
            cgroupParent: cgroupParent)
    }
}

/// LimitOptions as plain values.
struct LimitArguments: Sendable {
    var memory: String?
    var memorySwap: String?
    var cpus: String?
    var cpuShares: String?
    var pids: String?
    var cgroupParent: String?

    func parse(for stage: Stage) throws -> CgroupLimits? {
        let given: [(String, String?)] = [
            ("--memory", memory), ("--memory-swap", memorySwap), ("--cpus", cpus), ("--cpu-shares", cpuShares),
            ("--pids", pids), ("--cgroup-parent", cgroupParent),
        ]
        guard stage.limitsResources else {
            if let (name, _) = given.first(where: { $0.1 != nil }) {
                throw ClabError("\(name) needs stage 8 or later: cgroups arrive at stage 8", exitCode: 2)
            }
            return nil
        }
        if let parent = cgroupParent, parent.split(separator: "/").contains("..") {
            throw ClabError("--cgroup-parent \(parent) must not contain '..'", exitCode: 2)
        }
        return try CgroupLimits.parse(
            memory: memory, memorySwap: memorySwap, cpus: cpus, cpuShares: cpuShares, pids: pids)
    }
}
