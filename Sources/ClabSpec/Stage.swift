import CShims
import ClabSys
import Glibc

/// Linux namespace kinds, with the clone flag and the /proc/<pid>/ns file that names each.
public enum Namespace: String, CaseIterable, Codable, Sendable {
    case uts, pid, mnt, ipc, net, user

    public var cloneFlag: UInt64 {
        switch self {
        case .uts: return UInt64(CLONE_NEWUTS)
        case .pid: return UInt64(CLONE_NEWPID)
        case .mnt: return UInt64(CLONE_NEWNS)
        case .ipc: return UInt64(CLONE_NEWIPC)
        case .net: return UInt64(CLONE_NEWNET)
        case .user: return UInt64(CLONE_NEWUSER)
        }
    }

    public var flagName: String {
        switch self {
        case .uts: return "CLONE_NEWUTS"
        case .pid: return "CLONE_NEWPID"
        case .mnt: return "CLONE_NEWNS"
        case .ipc: return "CLONE_NEWIPC"
        case .net: return "CLONE_NEWNET"
        case .user: return "CLONE_NEWUSER"
        }
    }
}

/// One step of the walkthrough. Stages are cumulative: stage N includes 1...N-1.
/// A stage is one column of same-named files: its entry here; its in-namespace work, if it has
/// any, in `ClabInit/Stages/N-Name.swift` (clab-init, through `step(n)`); its host half in
/// `ClabRuntime/Stages/N-Name.swift` (what `Runtime.prepare` adds to the spec, what happens around
/// clone3, what goes at exit, each marked with `StageMark.host(n)`); its probes in
/// `ClabChecks/Stages/N-Name.swift`; its banner lines in `ClabLessons/Stages/`; its lesson and
/// lab in `lessons/` and `labs/`.
public struct Stage: Sendable, Equatable, Comparable {
    public let number: Int
    public let title: String
    /// The kernel object this stage adds, if it is a namespace.
    public let namespace: Namespace?
    /// One sentence: what the learner gets at this stage.
    public let adds: String
    /// The kernel interface this stage adds, as a learner would type or trace it.
    public let kernel: String

    public static func < (a: Stage, b: Stage) -> Bool { a.number < b.number }

    public static let all: [Stage] = [
        Stage(
            number: 1, title: "chroot", namespace: nil,
            adds: "the process sees the busybox image as /, but nothing else is isolated",
            kernel: "chdir(\"<rootfs>\"); chroot(\".\"); chdir(\"/\")"),
        Stage(
            number: 2, title: "UTS namespace", namespace: .uts,
            adds: "own hostname: `hostname x` inside leaves the host's name alone",
            kernel: "clone3(CLONE_NEWUTS); sethostname(\"<id>\")"),
        Stage(
            number: 3, title: "PID namespace", namespace: .pid,
            adds: "the command is PID 1 and sees only its own processes in a fresh /proc",
            kernel: "clone3(CLONE_NEWPID); mount(\"proc\", \"<rootfs>/proc\", \"proc\")"),
        Stage(
            number: 4, title: "mount namespace + pivot_root", namespace: .mnt,
            adds: "private mounts, and the host's root is gone: the chroot escape fails",
            kernel:
                "clone3(CLONE_NEWNS); mount(MS_REC|MS_PRIVATE on /); bind the image; pivot_root(\".\", \".\"); umount2(\".\", MNT_DETACH)"
        ),
        Stage(
            number: 5, title: "IPC namespace", namespace: .ipc,
            adds: "own System V shared memory, semaphores and message queues",
            kernel: "clone3(CLONE_NEWIPC)"),
        Stage(
            number: 6, title: "network namespace", namespace: .net,
            adds: "own network stack: `lo` and none of the host's devices, no route anywhere",
            kernel: "clone3(CLONE_NEWNET); ioctl(SIOCSIFFLAGS, lo up)"),
        Stage(
            number: 7, title: "user namespace", namespace: .user,
            adds: "root inside is an unprivileged uid (100000+) on the host",
            kernel:
                "clone3(CLONE_NEWUSER); write /proc/<pid>/uid_map and gid_map; setresuid(0, 0, 0)"),
        Stage(
            number: 8, title: "cgroups", namespace: nil,
            adds: "memory, CPU and pids limits, enforced and counted by the kernel",
            kernel: "mkdir <cgroup>/clab/<id>; write the limit files; write the pid to cgroup.procs before \"go\""),
        Stage(
            number: 9, title: "overlay image layers", namespace: nil,
            adds: "the root is the image's read-only layers under a writable layer of its own",
            kernel:
                "mount(\"overlay\", \"<rootfs>\", \"overlay\", 0, \"lowerdir=<layers>,upperdir=<upper>,workdir=<work>\")"
        ),
        Stage(
            number: 10, title: "volumes", namespace: nil,
            adds: "data that outlives the container: managed volumes and bind mounts (-v)",
            kernel: "openat2(root, \"<path>\", RESOLVE_IN_ROOT); mount(\"<volume>\", \"/proc/self/fd/<fd>\", MS_BIND)"),
        Stage(
            number: 11, title: "container networking", namespace: nil,
            adds: "eth0 on clab's bridge: an address, a default route, NAT to the outside, published ports (-p)",
            kernel:
                "rtnetlink RTM_NEWLINK (bridge, veth pair with its peer in the container's netns), RTM_NEWADDR, RTM_NEWROUTE; nftables masquerade and dnat in table ip clab"
        ),
        Stage(
            number: 12, title: "hardening", namespace: nil,
            adds:
                "root keeps Docker's 14 capabilities, no_new_privs, a seccomp filter, masked /proc, a cgroup namespace",
            kernel:
                "unshare(CLONE_NEWCGROUP); mount /dev/null on /proc/kcore; prctl(PR_CAPBSET_DROP); capset; prctl(PR_SET_NO_NEW_PRIVS); seccomp(SECCOMP_SET_MODE_FILTER)"
        ),
    ]

    public static var range: ClosedRange<Int> { 1...all.count }

    /// The stage numbered `n`, or a one-line error a learner can act on.
    public static func numbered(_ n: Int) throws -> Stage {
        guard let stage = all.first(where: { $0.number == n }) else {
            throw ClabError(
                "no stage \(n): stages go from 1 to \(all.count) (run `clab lessons` to list them)",
                exitCode: 2)
        }
        return stage
    }

    /// Every stage up to and including this one.
    public var cumulative: [Stage] { Stage.all.filter { $0.number <= number } }

    /// The namespaces a container built up to this stage gets, in stage order.
    public var namespaces: [Namespace] { cumulative.compactMap(\.namespace) }

    public func has(_ ns: Namespace) -> Bool { namespaces.contains(ns) }

    public var cloneFlags: UInt64 { namespaces.reduce(0) { $0 | $1.cloneFlag } }

    /// From stage 8 on, the container runs in cgroups with limits.
    public var limitsResources: Bool { number >= 8 }

    /// From stage 9 on, the root is an overlay of image layers.
    public var layersImage: Bool { number >= 9 }

    /// From stage 10 on, `-v` mounts volumes.
    public var mountsVolumes: Bool { number >= 10 }

    /// From stage 11 on, the container is connected: a veth on a bridge, NAT, published ports.
    public var connectsNetwork: Bool { number >= 11 }

    /// From stage 12 on, root is held back: capabilities, no_new_privs, seccomp, masked paths.
    public var hardens: Bool { number >= 12 }

    /// The lesson that explains this stage.
    public var lessonHint: String { "clab lesson \(number)" }
}
