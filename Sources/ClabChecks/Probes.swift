import ClabCgroups
import ClabHost
import ClabNetlink
import ClabNetwork
import ClabRuntime
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// One isolation property, checked, with what was seen.
///
/// `id` names the property for programs (the tests, `clab check --json`) and stays the same when
/// its wording for learners changes: `<area>.<property>[.<parameter>]`, lower case, words in a
/// part joined by `-`. The area is what a stage isolates (`chroot`, `ns`, `uts`, `pid`, `mnt`,
/// `ipc`, `net`, `user`, `cgroup`, `overlay`, `volume`, `bridge`, `hardening`) or `labN` for lab
/// N's verifier (and `made-by-hand`, the property every by-hand lab starts with). A probe made
/// once per namespace kind or per file ends with that parameter as the kernel spells it
/// (`ns.own.uts`, `user.root-mapped.uid_map`). The ids of one run's results are unique.
public struct ProbeResult: Codable, Sendable, Equatable {
    public let id: String
    public let stage: Int
    public let property: String
    public let passed: Bool
    public let evidence: String
    /// A lab's failed property: the one thing to do about it (`clab lab check` prints it apart).
    public let fix: String?

    public init(id: String, stage: Int, property: String, passed: Bool, evidence: String, fix: String? = nil) {
        self.id = id
        self.stage = stage
        self.property = property
        self.passed = passed
        self.evidence = evidence
        self.fix = passed ? nil : fix.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The evidence, and the fix after a dash when the property failed.
    public var explained: String { fix.map { "\(evidence) — \($0)" } ?? evidence }
}

/// A property's stable id and its wording for learners, for a property named in more than one place.
public struct ProbeName: Sendable, Equatable {
    public let id: String
    public let wording: String

    public init(id: String, wording: String) {
        self.id = id
        self.wording = wording
    }
}

extension ProbeResult {
    init(name: ProbeName, stage: Int, passed: Bool, evidence: String, fix: String? = nil) {
        self.init(id: name.id, stage: stage, property: name.wording, passed: passed, evidence: evidence, fix: fix)
    }
}

/// The isolation probes of stages 1...N, run against a real container at stage N. The container
/// runs a small busybox script that records what it sees from inside, then waits while the
/// host looks at it through /proc/<pid>; the results compare both sides.
/// `clab check` prints these; the test suites assert them.
///
/// Each stage's probes are in Stages/, one file per stage, named like the init side's
/// (ClabInit/Stages): a type whose `evaluate` looks at a `ProbeContext` and returns the
/// properties it can check at that stage (none before its stage). Adding a stage's probes is
/// a file there and a line in `evaluators`.
public struct StageProbes {
    public let runtime: Runtime

    public init(runtime: Runtime) { self.runtime = runtime }

    /// Every stage's probes, in stage order (namespace identity after stage 1's root, as
    /// `clab check` prints it). The results are then sorted by stage, stably.
    static let evaluators: [@Sendable (ProbeContext) throws -> [ProbeResult]] = [
        ChrootProbes.evaluate,
        NamespaceProbes.evaluate,
        UTSProbes.evaluate,
        PIDProbes.evaluate,
        MountProbes.evaluate,
        IPCProbes.evaluate,
        NetworkProbes.evaluate,
        UserProbes.evaluate,
        CgroupProbes.evaluate,
        OverlayProbes.evaluate,
        VolumeProbes.evaluate,
        BridgeProbes.evaluate,
        HardeningProbes.evaluate,
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
        let session = try ContainerSession(prepared: prepared, runtime: runtime)
        defer { session.finish() }
        let context = ProbeContext(
            stage: stage, spec: prepared.spec, tag: tag, host: host,
            inside: InsideView(pid: session.pid, facts: try session.readFacts()), segment: segment,
            cgroup: prepared.cgroup, cgroupLayout: prepared.cgroupLayout ?? "?", runtime: runtime,
            image: request.image, volumes: volumes, roDir: roDir)
        return try Self.evaluate(context)
    }

    /// Every stage's probes on one container, in stage order; stable within a stage (stage 2's
    /// file adds a stage-12 line before stage 12's own).
    static func evaluate(_ context: ProbeContext) throws -> [ProbeResult] {
        let results = try evaluators.flatMap { try $0(context) }
        return results.enumerated().sorted { ($0.element.stage, $0.offset) < ($1.element.stage, $1.offset) }.map(
            \.element)
    }

    /// The ids that more than one result has (none, unless two probes were given the same id).
    public static func duplicateIDs(_ results: [ProbeResult]) -> [String] {
        Dictionary(grouping: results, by: \.id).filter { $0.value.count > 1 }.keys.sorted()
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
}

/// The results a stage's probes add, in order.
struct ProbeList {
    var results: [ProbeResult] = []

    mutating func add(_ id: String, _ stage: Int, _ property: String, _ passed: Bool, _ evidence: String) {
        results.append(ProbeResult(id: id, stage: stage, property: property, passed: passed, evidence: evidence))
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

/// The container's side: its pid on the host, and the script's KEY=VALUE facts.
struct InsideView {
    let pid: pid_t
    let facts: [String: String]
}

/// What each stage's probes look at: the stage, the container as prepared and running, and
/// both sides' views of it.
struct ProbeContext {
    let stage: Stage
    let spec: ContainerSpec
    /// The run's name: in the files, mounts and hostname the container makes.
    let tag: String
    let host: HostView
    let inside: InsideView
    /// Stage 5: the host's shared-memory segment (nil if it could not be made).
    let segment: SysVSegment?
    /// Stage 8: the container's cgroup, and how its hierarchy is laid out.
    let cgroup: ContainerCgroup?
    let cgroupLayout: String
    let runtime: Runtime
    /// Stage 9: the image whose layers form the root.
    let image: String
    /// Stage 10: the managed volume (named `tag`) and the host directory bound read-only.
    let volumes: VolumeStore
    let roDir: String

    var pid: pid_t { inside.pid }
    var facts: [String: String] { inside.facts }
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
