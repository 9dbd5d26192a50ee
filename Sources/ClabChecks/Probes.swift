import ClabCore
import ClabKernel
import ClabNetlink
import ClabNetwork
import FoundationEssentials
import Glibc

/// One isolation property, checked, with what was seen.
public struct ProbeResult: Codable, Sendable, Equatable {
    public let stage: Int
    public let property: String
    public let passed: Bool
    public let evidence: String
    /// A lab's failed property: the one thing to do about it (`clab lab check` prints it apart).
    public let fix: String?

    public init(stage: Int, property: String, passed: Bool, evidence: String, fix: String? = nil) {
        self.stage = stage
        self.property = property
        self.passed = passed
        self.evidence = evidence
        self.fix = passed ? nil : fix.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The evidence, and the fix after a dash when the property failed.
    public var explained: String { fix.map { "\(evidence) — \($0)" } ?? evidence }
}

/// The isolation probes of stages 1...N, run against a real container at stage N. The container
/// runs a small busybox script that records what it sees from inside, then waits while the
/// host looks at it through /proc/<pid>; the results compare both sides.
/// `clab check` prints these; the test suites assert them.
public struct StageProbes {
    public let runtime: Runtime

    public init(runtime: Runtime) { self.runtime = runtime }

    /// The devices the ipip, sit, gre, vti and ip6 tunnel modules create in every network
    /// namespace (unless net.core.fb_tunnels_only_for_init_net is set).
    static let tunnelFallbackDevices: Set<String> = [
        "tunl0", "sit0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6tnl0", "ip6gre0", "ip6_vti0",
    ]

    /// Runs a stage-N container and checks every property of stages 1...N.
    public func run(stage: Stage, log: (String) -> Void = { _ in }) throws -> [ProbeResult] {
        let tag = "clab-probe-\(ContainerSpec.newID())"
        let host = HostView.capture()
        let segment = SysVSegment.create()
        defer { segment?.remove() }

        var request = RunRequest(stage: stage, command: ["/bin/sh", "-c", Self.script(tag: tag, hostPid: getpid())])
        request.hostname = nil
        // Stage 10: a managed volume and a read-only bind of a host directory, both ours.
        let volumes = VolumeStore(layout: runtime.layout)
        let roDir = runtime.layout.root + "/.\(tag)-ro"
        if stage.mountsVolumes {
            try FS.makeDirectories(roDir)
            try volumes.create(tag)
            request.volumes = [
                VolumeRequest(source: .named(tag), target: "/clab-volume", readOnly: false),
                VolumeRequest(source: .bind(roDir), target: "/clab-ro", readOnly: true),
            ]
        }
        defer {
            if stage.mountsVolumes {
                try? FS.removeTree(roDir)
                try? volumes.remove(tag)
            }
        }
        let prepared = try runtime.prepare(request, log: log)
        let spec = prepared.spec
        let session = try ContainerSession(prepared: prepared, runtime: runtime)
        defer { session.finish() }
        let facts = try session.readFacts()
        let inside = InsideView(pid: session.pid, facts: facts)
        var results = Self.evaluate(
            stage: stage, spec: spec, tag: tag, host: host, inside: inside, segment: segment)
        if let cgroup = prepared.cgroup {
            results += Self.evaluateCgroups(
                cgroup, layout: prepared.cgroupLayout ?? "?", pid: session.pid, facts: facts)
        }
        if let overlay = spec.overlay {
            results += Self.evaluateOverlay(
                overlay, layers: try runtime.images.layers(request.image), store: runtime.images.layerStore,
                base: spec.idMapping?.host ?? 0, pid: session.pid, tag: tag)
        }
        if stage.connectsNetwork {
            results += Self.evaluateNetwork(spec: spec, facts: facts, networks: runtime.networks)
        }
        if let hardening = spec.hardening {
            results += Self.evaluateHardening(hardening, pid: session.pid, host: host, facts: facts)
        }
        if stage.mountsVolumes {
            // The container wrote the volume: read it as its root sees it (f may be a symlink).
            let data = volumes.dataPath(tag) + "/f"
            let written = FS.read("/f", inRoot: volumes.dataPath(tag))?.trimmed
            results.append(
                ProbeResult(
                    stage: 10, property: "a volume's data lands on the host, outside the layers",
                    passed: written == tag && facts["volume"] == "ok",
                    evidence: "echo \(tag) > /clab-volume/f inside; host \(data): \(written ?? "missing")"))
            results.append(
                ProbeResult(
                    stage: 10, property: "a read-only bind mount refuses writes",
                    passed: facts["ro"]?.contains("Read-only file system") == true && !FS.exists(roDir + "/x"),
                    evidence: "touch /clab-ro/x inside: \(facts["ro"] ?? "?")"))
        }
        // In stage order (stable): stage 11's network lines are added before stage 10's.
        return results.enumerated().sorted { ($0.element.stage, $0.offset) < ($1.element.stage, $1.offset) }.map(
            \.element)
    }

    /// Stage 11: the container's eth0, its route, its gateway, its veth on the host's bridge.
    static func evaluateNetwork(spec: ContainerSpec, facts f: [String: String], networks: NetworkStore) -> [ProbeResult]
    {
        var results: [ProbeResult] = []
        func add(_ s: Int, _ property: String, _ passed: Bool, _ evidence: String) {
            results.append(ProbeResult(stage: s, property: property, passed: passed, evidence: evidence))
        }
        let address = f["eth0"] ?? ""
        let subnet = networks.list().first {
            $0.name == NetworkStore.defaultName
        }
        let inSubnet =
            subnet?.network.map { net in
                IPv4Address(String(address.prefix { $0 != "/" })).map(net.contains) ?? false
            } ?? false
        add(
            11, "eth0 has an address on clab's bridge", inSubnet,
            "inside: eth0 \(address.isEmpty ? "has no address" : address); clab network: \(subnet?.subnet ?? "none")")
        let gateway = subnet?.gateway.map { "\($0)" }
        add(
            11, "the default route goes through the bridge's address", f["gateway"] == gateway && gateway != nil,
            "inside: default via \(f["gateway"] ?? "?"); the bridge \(subnet?.bridge ?? "?") is \(gateway ?? "?")")
        add(11, "the gateway answers a ping", f["ping_gateway"] == "0", "inside: ping -c 1 \(f["gateway"] ?? "?")")
        let veth = NetworkStore.hostVethName(spec.id)
        let master = (try? Netlink().links()).flatMap { links in
            links.first { $0.name == veth }.flatMap { v in links.first { $0.index == v.master }?.name }
        }
        add(
            11, "its veth's host end is on the bridge", master == subnet?.bridge && master != nil,
            "host: \(veth) \(master.map { "has master \($0)" } ?? "has no master")")
        return results
    }

    /// What the container reports from inside, as KEY=VALUE lines, then READY; it waits for a
    /// line on stdin before cleaning up, so the host can look at it while it runs.
    static func script(tag: String, hostPid: pid_t) -> String {
        """
        echo "pid=$$"
        echo "image_marker=$(cat /etc/clab-image 2>/dev/null)"
        /usr/bin/breakout >/tmp/.\(tag) 2>&1; echo "breakout_status=$?"
        echo "breakout_out=$(head -n 1 /tmp/.\(tag))"; rm -f /tmp/.\(tag)
        echo "uid=$(id -u)"
        touch /tmp/\(tag) && echo "touch=ok"
        if [ "$CLAB_STAGE" -ge 2 ]; then
          echo "hostname_before=$(hostname)"
          hostname \(tag) && echo "hostname_after=$(hostname)"
        fi
        if [ "$CLAB_STAGE" -ge 3 ]; then
          echo "procs=$(ls /proc | grep -c '^[0-9][0-9]*$')"
          kill -0 \(hostPid) 2>/dev/null; echo "kill_host=$?"
        fi
        if [ "$CLAB_STAGE" -ge 4 ]; then
          mount -t tmpfs \(tag)-tmpfs /mnt && echo "mounted=$(grep -c \(tag)-tmpfs /proc/self/mountinfo)"
        fi
        if [ "$CLAB_STAGE" -ge 5 ]; then
          echo "shm=$(tail -n +2 /proc/sysvipc/shm | wc -l)"
        fi
        if [ "$CLAB_STAGE" -ge 6 ]; then
          echo "netdevs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')"
          echo "lo=$(ip link show lo | head -n 1)"
          echo "routes=$(ip -4 route | wc -l)"
        fi
        if [ "$CLAB_STAGE" -ge 9 ]; then
          echo "\(tag)" > /.\(tag) && rm /etc/hosts && echo "overlay=ok"
        fi
        if [ "$CLAB_STAGE" -ge 11 ]; then
          echo "eth0=$(ip -4 -o addr show dev eth0 | awk '{print $4}')"
          gw=$(ip -4 route show default | awk '{print $3}')
          echo "gateway=$gw"
          ping -c 1 -W 2 "$gw" >/dev/null 2>&1; echo "ping_gateway=$?"
        fi
        if [ "$CLAB_STAGE" -ge 12 ]; then
          echo "keys=$(wc -c < /proc/keys 2>&1)"
          echo "sysctl=$(cat /proc/sys/kernel/domainname 2>&1 > /proc/sys/kernel/domainname)"
          echo "cgroup_self=$(cut -d: -f3 /proc/self/cgroup | sort -u | tr '\\n' ' ')"
          unshare -U true 2>/dev/null; echo "unshare=$?"
        fi
        if [ "$CLAB_STAGE" -ge 10 ]; then
          echo "\(tag)" > /clab-volume/f && echo "volume=ok"
          echo "ro=$(touch /clab-ro/x 2>&1)"
        fi
        if [ "$CLAB_STAGE" -ge 8 ]; then
          for f in memory/memory.limit_in_bytes memory.max pids/pids.max pids.max; do
            [ -f /sys/fs/cgroup/$f ] && echo "cg_$(basename $f)=$(cat /sys/fs/cgroup/$f)"
          done
          for f in /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max; do
            [ -f $f ] && { echo 1 > $f 2>/dev/null && echo "cg_readonly=no" || echo "cg_readonly=yes"; }
          done
        fi
        echo READY
        read line
        rm -f /tmp/\(tag)
        """
    }

    static func evaluate(
        stage: Stage, spec: ContainerSpec, tag: String, host: HostView, inside: InsideView, segment: SysVSegment?
    ) -> [ProbeResult] {
        var results: [ProbeResult] = []
        func add(_ s: Int, _ property: String, _ passed: Bool, _ evidence: String) {
            results.append(ProbeResult(stage: s, property: property, passed: passed, evidence: evidence))
        }
        let f = inside.facts
        let pid = inside.pid

        // Stage 1: chroot.
        let marker = f["image_marker"] ?? ""
        // In-root: a plain /proc/PID/root/etc/... would follow the container's symlinks from the host's /.
        let hostSeesImage = FS.exists("/etc/clab-image", inRoot: "/proc/\(pid)/root")
        add(
            1, "/ is the image", marker == "clab busybox image" && hostSeesImage,
            "inside: /etc/clab-image reads \"\(marker)\"; host: /proc/\(pid)/root/etc/clab-image \(hostSeesImage ? "exists" : "is missing")"
        )
        let breakout = f["breakout_out"] ?? "no output"
        if stage.number < 4 {
            add(
                1, "chroot is not a jail: breakout escapes (stage 4 stops it)", f["breakout_status"] == "0",
                breakout)
        } else {
            add(1, "breakout is contained", f["breakout_status"] == "1", breakout)
        }

        // Namespace identity, for every kind: own for this stage's, shared for the rest.
        for ns in stage.namespaces {
            guard let owner = Stage.all.first(where: { $0.namespace == ns }) else { continue }
            let mine = host.namespaces[ns] ?? "?"
            let theirs = Host.namespaceID(pid: "\(pid)", ns) ?? "?"
            add(
                owner.number, "own \(ns.rawValue) namespace", theirs != "?" && theirs != mine,
                "/proc/\(pid)/ns/\(ns.rawValue) -> \(theirs); host: \(mine)")
        }
        let shared = Namespace.allCases.filter { !stage.has($0) }
        if !shared.isEmpty {
            let same = shared.filter { Host.namespaceID(pid: "\(pid)", $0) == host.namespaces[$0] }
            add(
                stage.number,
                "not isolated yet (shared with the host): \(shared.map(\.rawValue).joined(separator: ", "))",
                same.count == shared.count,
                "same inode inside and on the host for: \(same.map(\.rawValue).joined(separator: ", "))")
        }

        if stage.has(.uts) {
            let before = f["hostname_before"] ?? "?"
            add(
                2, "hostname is the container's", before == spec.hostname,
                "inside: \(before); expected \(spec.hostname)")
            let after = f["hostname_after"] ?? "?"
            let hostNow = Host.hostname
            if stage.hardens {
                // Stage 12 took CAP_SYS_ADMIN: sethostname is refused, as in a Docker container.
                add(
                    12, "setting the hostname is refused (no CAP_SYS_ADMIN)",
                    f["hostname_after"] == nil && hostNow == host.hostname,
                    "inside: `hostname \(tag)` \(f["hostname_after"] == nil ? "failed" : "succeeded: \(after)"); host: \(hostNow)"
                )
            } else {
                add(
                    2, "a hostname set inside stays inside", after == tag && hostNow == host.hostname,
                    "inside after `hostname \(tag)`: \(after); host: \(hostNow)")
            }
        }

        if stage.has(.pid) {
            add(3, "the command is PID 1", f["pid"] == "1", "inside: $$ = \(f["pid"] ?? "?"); host pid \(pid)")
            let procs = Int(f["procs"] ?? "") ?? -1
            add(
                3, "only the container's processes are visible", procs > 0 && procs < 10 && procs < host.processCount,
                "inside /proc lists \(procs) processes; the host's lists \(host.processCount)")
            add(
                3, "host processes cannot be signalled", f["kill_host"] != nil && f["kill_host"] != "0",
                "inside: kill -0 \(getpid()) (clab on the host) exits \(f["kill_host"] ?? "?")")
        }

        if stage.has(.mnt) {
            let seenInside = f["mounted"] == "1"
            let hostTable = (FS.read("/proc/self/mountinfo") ?? "")
            let leaked = hostTable.contains(tag + "-tmpfs")
            if stage.hardens {
                add(
                    12, "mount is refused inside (no CAP_SYS_ADMIN)", f["mounted"] == nil && !leaked,
                    "inside: mount -t tmpfs \(tag)-tmpfs /mnt \(f["mounted"] == nil ? "failed" : "succeeded"); host mountinfo: \(leaked ? "LISTED" : "absent")"
                )
            } else {
                add(
                    4, "a mount made inside stays inside", seenInside && !leaked,
                    "inside: tmpfs \(tag)-tmpfs on /mnt \(seenInside ? "listed" : "missing"); host mountinfo: \(leaked ? "LISTED" : "absent")"
                )
            }
            let table = Mounts.parse((FS.read("/proc/\(pid)/mountinfo") ?? ""))
            let rootMount = table.last { $0.mountPoint == "/" }
            add(
                4, "mount propagation is private", rootMount?.propagation == "private",
                "container's / is \(rootMount?.propagation ?? "?")")
            let hostRoot = Mounts.table().last { $0.mountPoint == "/" }
            let oldRoot = table.contains {
                $0.root == "/" && $0.source == hostRoot?.source && $0.fsType == hostRoot?.fsType
            }
            add(
                4, "the host's root is not in the container's mount table", !oldRoot && rootMount != nil,
                "container: \(table.count) mounts, / is \(rootMount.map { "\($0.source):\($0.root)" } ?? "?"); host: \(Mounts.table().count) mounts"
            )
        }

        if stage.has(.ipc), let segment {
            let insideCount = Int(f["shm"] ?? "") ?? -1
            add(
                5, "host System V shared memory is invisible", insideCount == 0 && segment.visibleOnHost(),
                "host: segment \(segment.id) in /proc/sysvipc/shm; inside: \(insideCount) segments")
        }

        if stage.has(.net) {
            let all = (f["netdevs"] ?? "").split(separator: " ").map(String.init)
            // A loaded ipip/sit/gre/vti module gives every new namespace its fallback device
            // (tunl0, sit0, ...): the kernel's own, down, never one of the host's.
            let fallbacks = all.filter(Self.tunnelFallbackDevices.contains)
            let devs = all.filter { !Self.tunnelFallbackDevices.contains($0) }
            // From stage 11 the container has its own eth0 too, still none of the host's.
            let expected = stage.connectsNetwork ? ["eth0", "lo"] : ["lo"]
            let besides =
                fallbacks.isEmpty ? "" : " (besides the kernel's tunnel fallbacks \(fallbacks.joined(separator: " ")))"
            add(
                6, (stage.connectsNetwork ? "only lo and its own eth0 exist" : "only lo exists") + besides,
                devs.sorted() == expected, "inside /proc/net/dev: \(all.joined(separator: " "))")
            let lo = f["lo"] ?? ""
            add(6, "lo is up", lo.contains(",UP") || lo.contains("<UP"), lo.isEmpty ? "no lo" : lo)
            if !stage.connectsNetwork {
                add(
                    6, "no route anywhere", f["routes"] == "0",
                    "inside: `ip -4 route` prints \(f["routes"] ?? "?") routes")
            }
        }

        if stage.has(.user), let map = spec.idMapping {
            for file in ["uid_map", "gid_map"] {
                let text = (FS.read("/proc/\(pid)/\(file)") ?? "").split(whereSeparator: \.isWhitespace).joined(
                    separator: " ")
                let want = "\(map.inside) \(map.host) \(map.count)"
                add(7, "\(file) maps container root to \(map.host)", text == want, "/proc/\(pid)/\(file): \(text)")
            }
            add(7, "the command runs as root inside", f["uid"] == "0", "inside: id -u = \(f["uid"] ?? "?")")
            let owner = FS.lstat("/tmp/\(tag)", inRoot: "/proc/\(pid)/root").map { Int($0.st_uid) } ?? -1
            add(
                7, "a file created inside belongs to uid \(map.host) on the host",
                f["touch"] == "ok" && owner == Int(map.host),
                "touch /tmp/\(tag) inside; host: owner uid \(owner)")
        }
        return results.sorted { $0.stage < $1.stage }
    }
}

extension StageProbes {
    /// Stage 12, from the host's /proc/<pid>/status and the container's own view.
    static func evaluateHardening(_ h: Hardening, pid: pid_t, host: HostView, facts f: [String: String])
        -> [ProbeResult]
    {
        var results: [ProbeResult] = []
        func add(_ property: String, _ passed: Bool, _ evidence: String) {
            results.append(ProbeResult(stage: 12, property: property, passed: passed, evidence: evidence))
        }
        let status = Host.status(pid: "\(pid)") ?? [:]
        let want = Capability.mask(h.capabilities)
        let sets = ["CapEff", "CapPrm", "CapBnd", "CapInh"].map { ($0, UInt64(status[$0] ?? "", radix: 16)) }
        add(
            "root keeps only \(h.capabilities == Capability.dockerDefault ? "Docker's 14 capabilities" : "the chosen capabilities")",
            sets.allSatisfy { $0.1 == want } && UInt64(status["CapAmb"] ?? "", radix: 16) == 0,
            "/proc/\(pid)/status: " + sets.map { "\($0.0) \(status[$0.0] ?? "?")" }.joined(separator: ", ")
                + "; want \(String(want, radix: 16))")
        add(
            "no_new_privs is set", status["NoNewPrivs"] == (h.noNewPrivileges ? "1" : "0"),
            "/proc/\(pid)/status: NoNewPrivs \(status["NoNewPrivs"] ?? "?")")
        if !h.seccompFilter.isEmpty {
            add(
                "a seccomp filter is installed",
                status["Seccomp"] == "2" && (Int(status["Seccomp_filters"] ?? "") ?? 0) >= 1,
                "/proc/\(pid)/status: Seccomp \(status["Seccomp"] ?? "?"), Seccomp_filters \(status["Seccomp_filters"] ?? "?") (\(h.seccompName))"
            )
            add(
                "creating namespaces is refused", f["unshare"] == "1",
                "inside: unshare -U true exits \(f["unshare"] ?? "?") (seccomp: EPERM without CAP_SYS_ADMIN)")
        }
        add("/proc/keys is masked", f["keys"] == "0", "inside: wc -c < /proc/keys: \(f["keys"] ?? "?")")
        add(
            "/proc/sys is read-only", f["sysctl"]?.contains("Read-only file system") == true,
            "inside: write /proc/sys/kernel/domainname: \(f["sysctl"] ?? "?")")
        if h.cgroupNamespace {
            let theirs = FS.readLink("/proc/\(pid)/ns/cgroup") ?? "?"
            let mine = FS.readLink("/proc/self/ns/cgroup") ?? "?"
            let paths = (f["cgroup_self"] ?? "").split(separator: " ")
            add(
                "own cgroup namespace: /proc/self/cgroup shows /",
                theirs != mine && !paths.isEmpty && paths.allSatisfy { $0 == "/" },
                "/proc/\(pid)/ns/cgroup -> \(theirs); host: \(mine); inside /proc/self/cgroup paths: \(f["cgroup_self"] ?? "?")"
            )
        }
        return results
    }

    /// Stage 8: the container is in its cgroup (seen from the host), the limits are in the
    /// kernel's files, and visible (read-only) inside.
    static func evaluateCgroups(_ cgroup: ContainerCgroup, layout: String, pid: pid_t, facts f: [String: String])
        -> [ProbeResult]
    {
        var results: [ProbeResult] = []
        func add(_ property: String, _ passed: Bool, _ evidence: String) {
            results.append(ProbeResult(stage: 8, property: property, passed: passed, evidence: evidence))
        }
        let membership = (FS.read("/proc/\(pid)/cgroup") ?? "")
        let dirs = cgroup.placement.allDirs
        let joined = dirs.allSatisfy { dir in
            (FS.read(dir + "/cgroup.procs") ?? "").split(separator: "\n").contains(Substring("\(pid)"))
        }
        let shown = membership.split(separator: "\n").filter { $0.contains("clab/") }.map(String.init)
        add(
            "the container is in its own cgroup", joined && !dirs.isEmpty,
            "\(layout); /proc/\(pid)/cgroup: \(shown.joined(separator: "; "))")
        let counters = cgroup.counters()
        if let memory = cgroup.limits.memoryBytes {
            let file = cgroup.placement.version == .v1 ? "memory.limit_in_bytes" : "memory.max"
            let inside = f["cg_" + file] ?? "?"
            let onHost = (FS.read((cgroup.dir("memory") ?? "") + "/" + file) ?? "").trimmed
            add(
                "memory limit \(humanBytes(memory)) set and visible inside",
                inside == "\(memory)" && onHost == "\(memory)",
                "\(file): \(onHost) on the host, \(inside) inside /sys/fs/cgroup")
        }
        if let pids = cgroup.limits.pids {
            let inside = f["cg_pids.max"] ?? "?"
            add(
                "pids limit \(pids) set and visible inside", inside == "\(pids)" && counters.pidsCurrent != nil,
                "pids.max inside: \(inside); pids.current: \(counters.pidsCurrent.map(String.init) ?? "?")")
        }
        add(
            "the limits are read-only inside", f["cg_readonly"] == "yes",
            f["cg_readonly"] == "yes" ? "writing pids.max inside fails" : "a write to pids.max inside succeeded")
        return results
    }
}

extension StageProbes {
    /// Stage 9: the root is an overlay of the layers; writes and deletes land in the upper
    /// directory; the layers themselves are unchanged (their digests still match).
    static func evaluateOverlay(
        _ overlay: OverlaySpec, layers: [String], store: LayerStore, base: UInt32, pid: pid_t, tag: String
    ) -> [ProbeResult] {
        var results: [ProbeResult] = []
        func add(_ property: String, _ passed: Bool, _ evidence: String) {
            results.append(ProbeResult(stage: 9, property: property, passed: passed, evidence: evidence))
        }
        let root = Mounts.parse((FS.read("/proc/\(pid)/mountinfo") ?? "")).last { $0.mountPoint == "/" }
        add(
            "the root is an overlay of the image's \(layers.count) layer\(layers.count == 1 ? "" : "s")",
            root?.fsType == "overlay" && overlay.lowers.allSatisfy { root?.superOptions.contains($0) == true },
            "container's /: \(root?.fsType ?? "?") with lowerdir=\(overlay.lowers.map { Path.basename($0).prefix(12) }.joined(separator: ":"))"
        )
        // The container wrote the upper directory: no symlink in it is followed.
        let written = FS.lstat(overlay.upper, beneath: "/." + tag) != nil
        let inLayers = overlay.lowers.contains { FS.lstat($0, beneath: "/." + tag) != nil }
        add(
            "writes land in the container's upper layer", written && !inLayers,
            "/.\(tag) is in upperdir: \(written ? "yes" : "no"); in a layer: \(inLayers ? "YES" : "no")")
        let hosts = FS.lstat(overlay.upper, beneath: "/etc/hosts")
        let whiteout = hosts.map { ($0.st_mode & S_IFMT) == S_IFCHR && $0.st_rdev == 0 } ?? false
        let stillInLayer = overlay.lowers.contains { FS.lstat($0, beneath: "/etc/hosts") != nil }
        add(
            "deleting a layer's file leaves a whiteout", whiteout && stillInLayer,
            "rm /etc/hosts inside: upperdir/etc/hosts is \(whiteout ? "a character device 0/0" : "not a whiteout"); the layer still has it: \(stillInLayer)"
        )
        // The layers the container used (the copies owned by the mapped range) still hash to
        // their digests once the shift is taken off.
        var unchanged: [String] = []
        for (digest, lower) in zip(layers.reversed(), overlay.lowers) {
            if let d = try? CanonicalTar(root: lower, idShift: base).digest().digest, d == digest {
                unchanged.append(digest)
            }
        }
        add(
            "no layer changed", unchanged.count == layers.count,
            "\(unchanged.count) of \(layers.count) layers still hash to their digest (\(layers.map { String($0.prefix(19)) }.joined(separator: ", ")))"
        )
        return results
    }
}

/// The host's side, captured before the container starts.
struct HostView {
    let hostname: String
    let namespaces: [Namespace: String]
    let processCount: Int

    static func capture() -> HostView {
        var ns: [Namespace: String] = [:]
        for kind in Namespace.allCases { ns[kind] = Host.namespaceID(kind) }
        let procs = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter {
            Int($0) != nil
        }
        return HostView(hostname: Host.hostname, namespaces: ns, processCount: procs.count)
    }
}

struct InsideView {
    let pid: pid_t
    let facts: [String: String]
}

/// A System V shared-memory segment made on the host, to look for inside (stage 5).
struct SysVSegment {
    let id: Int32

    static func create() -> SysVSegment? {
        let id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600)
        return id >= 0 ? SysVSegment(id: id) : nil
    }

    func visibleOnHost() -> Bool {
        (FS.read("/proc/sysvipc/shm") ?? "").split(separator: "\n").dropFirst().contains {
            $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first == "\(id)"
        }
    }

    func remove() { shmctl(id, IPC_RMID, nil) }
}
