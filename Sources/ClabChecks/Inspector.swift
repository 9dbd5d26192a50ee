import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// Looks at any running process from the host, through /proc/<pid>: which namespaces it owns,
/// what its root and mount table are, whether the chroot escape gets out. Backs the lab
/// verifiers (`clab lab check N --pid PID`), whatever made the process — clab, unshare or Docker.
///
/// The process is hostile: nothing here executes a program from its filesystem (that would run
/// the container's code with the host's credentials), and its files are read with in-root
/// resolution (`FS.read(_:inRoot:)`): a plain "/proc/PID/root/etc/x" follows an absolute
/// symlink `etc -> /etc` from the host's root. What needs its namespaces runs in
/// `clab-init --probe` (ProbeProcess), clab's own binary.
public struct ProcessInspector {
    public let pid: Int32
    /// clab-init, which does the probes that must enter the process's namespaces.
    public let initPath: String

    public init(pid: Int32, initPath: String = Runtime.defaultInitPath) throws {
        guard Host.startTime(pid: pid) != nil else {
            throw ClabError("no process \(pid): give the host pid of the container's first process (see `ps -ef`)")
        }
        self.pid = pid
        self.initPath = initPath
    }

    public func namespaceID(_ ns: Namespace) -> String? { Host.namespaceID(pid: "\(pid)", ns) }

    /// Own namespace of this kind (differs from the inspector's own, i.e. the host's).
    public func owns(_ ns: Namespace) -> (Bool, String) {
        let theirs = namespaceID(ns) ?? "?"
        let mine = Host.namespaceID(ns) ?? "?"
        return (theirs != "?" && theirs != mine, "/proc/\(pid)/ns/\(ns.rawValue) -> \(theirs); host: \(mine)")
    }

    /// The pid chain from /proc/<pid>/status NSpid: host pid first, innermost last.
    public var nsPids: [Int] {
        guard let line = Host.status(pid: "\(pid)")?["NSpid"] else { return [] }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }
    }

    /// The process's root, for in-root reads.
    public var root: String { "/proc/\(pid)/root" }

    /// The whole mount table of the process's mount namespace. /proc/<pid>/mountinfo shows only
    /// the mounts below the process's root, so a chroot would hide the host's root there;
    /// `clab-init --probe mountinfo` enters the namespace and reads its own mountinfo.
    public func namespaceMountTable() throws -> [MountInfo] {
        guard owns(.mnt).0 else { return Mounts.table() }
        let result = try probe("mountinfo")
        guard result.status == 0 else {
            throw ClabError("cannot read the mount table of process \(pid): \(result.output.trimmed)")
        }
        return Mounts.parse(result.output)
    }

    public var rootIsBusyboxImage: Bool { FS.exists("/etc/clab-image", inRoot: root) }

    /// Is the host's root filesystem still mounted somewhere in the process's mount namespace?
    /// After pivot_root and a detach of the old root it is not.
    public func hostRootIn(_ table: [MountInfo]) -> Bool {
        guard let hostRoot = Mounts.table().last(where: { $0.mountPoint == "/" }) else { return false }
        return table.contains { $0.root == "/" && $0.source == hostRoot.source && $0.fsType == hostRoot.fsType }
    }

    /// The chroot escape of the image's /usr/bin/breakout, done by `clab-init --probe breakout`
    /// from the process's root and inside its namespaces. Exit 0: it escaped; 1: contained;
    /// 2: it could not try (the output says why).
    public func breakout() throws -> (status: Int32, output: String) {
        let result = try probe("breakout")
        return (result.status, result.output.split(separator: "\n").first.map(String.init) ?? "")
    }

    func probe(_ what: String, _ arguments: String...) throws -> (status: Int32, output: String) {
        guard access(initPath, X_OK) == 0 else {
            throw ClabError("\(initPath) is missing: clab-init must be installed beside clab (make install)")
        }
        return try Host.run([initPath, "--probe", what, "\(pid)"] + arguments, timeout: 10)
    }
}

/// Lab 1: a container by hand, stages 1-4. Each property carries the line a learner needs.
public enum Lab1Verifier {
    public static func verify(pid: Int32, layouts: [StateLayout] = ClabMade.layouts(.resolve(rootOption: nil))) throws
        -> [ProbeResult]
    {
        let p = try ProcessInspector(pid: pid)
        var results = [ClabMade.property(pid: pid, layouts: layouts, stage: 1)]
        func add(_ id: String, _ stage: Int, _ property: String, _ ok: Bool, _ evidence: String, fix: String) {
            results.append(
                ProbeResult(
                    id: id, stage: stage, property: property, passed: ok, evidence: evidence, fix: fix))
        }
        add(
            "lab1.image-root", 1, "its root is the busybox image", p.rootIsBusyboxImage,
            "/proc/\(pid)/root/etc/clab-image \(p.rootIsBusyboxImage ? "exists" : "is missing")",
            fix: "start the process inside the directory `clab image path` prints")
        let uts = p.owns(.uts)
        add("lab1.ns-own.uts", 2, "own UTS namespace", uts.0, uts.1, fix: "unshare --uts gives it its own hostname")
        let pidns = p.owns(.pid)
        add(
            "lab1.ns-own.pid", 3, "own PID namespace", pidns.0, pidns.1,
            fix: "unshare --pid --fork: the forked child is the first process of the new namespace")
        let chain = p.nsPids
        add(
            "lab1.pid1", 3, "it is PID 1 inside", chain.count > 1 && chain.last == 1,
            "NSpid: \(chain.map(String.init).joined(separator: " "))",
            fix:
                "check the pid you gave: it must be the first process in the namespace (unshare's child), not unshare itself"
        )
        let mnt = p.owns(.mnt)
        add(
            "lab1.ns-own.mnt", 4, "own mount namespace", mnt.0, mnt.1,
            fix: "unshare --mount, or every mount you make lands on the host")
        let table = try p.namespaceMountTable()
        let visible = Mounts.parse((FS.read("/proc/\(pid)/mountinfo") ?? ""))
        let proc = visible.last { $0.mountPoint == "/proc" }
        add(
            "lab1.proc-own", 3, "a /proc of its own", proc?.fsType == "proc" && FS.exists("/proc/1", inRoot: p.root),
            proc.map { "/proc is \($0.fsType)" } ?? "nothing mounted on /proc",
            fix: "mount -t proc proc $ROOT/proc inside the new namespaces, before pivot_root")
        let root = table.last { $0.mountPoint == "/" }
        add(
            "lab1.propagation-private", 4, "mount propagation is private", root?.propagation == "private",
            "its / is \(root?.propagation ?? "?")",
            fix:
                "unshare --propagation private (or mount --make-rprivate /): a shared / makes pivot_root fail with EINVAL and leaks mounts"
        )
        let hostRoot = p.hostRootIn(table)
        add(
            "lab1.host-root-gone", 4, "the host's root is gone from its mount table", mnt.0 && !hostRoot,
            "\(table.count) mount\(table.count == 1 ? "" : "s") in its namespace; the host's root is \(hostRoot ? "still one of them" : "not")",
            fix: "chroot only moves this process's /; use pivot_root . . and umount -l . to drop the old root")
        let escape = try p.breakout()
        add(
            "lab1.breakout-contained", 4, "breakout is contained", escape.status == 1, escape.output,
            fix: "the escape climbs '..' to the old root, which is still in the namespace: pivot_root it away")
        return results
    }
}
