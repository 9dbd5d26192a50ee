import CShims
import ClabHost
import ClabImages
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 10: volumes and bind mounts by hand. In a work directory DIR, two containers A and B
/// (each `unshare --mount` and a chroot into its own copy of the image) see the host directory
/// DIR/site at /www, bound read-only, and share DIR/data at /data, bound read-write: the
/// volume. The verifier reads each container's mount table from the host (/proc/<pid>/mountinfo
/// shows paths as the process sees them), compares device and inode of /www and /data with the
/// host directories, and proves the rest for real with `clab-init --probe`, inside each
/// container's root and mount namespace: a write to /www must be refused (EROFS), and a file
/// written to A's /data must be read in B's. It never writes in the host's own view.
public enum Lab10Verifier {
    public static let www = "/www"
    public static let data = "/data"

    public static func verify(pids: [Int32], dir given: String, layouts: [StateLayout]) throws -> [ProbeResult] {
        let absolute = given.hasPrefix("/") ? given : FileManager.default.currentDirectoryPath + "/" + given
        let dir = URL(fileURLWithPath: absolute).standardizedFileURL.path
        let site = dir + "/site"
        let volume = dir + "/data"
        let a = try ProcessInspector(pid: pids[0])
        let b = try ProcessInspector(pid: pids[1])
        let named = [("A", a), ("B", b)]
        var r = LabResults(stage: 10)

        // By hand: neither process is clab's, and DIR is not clab's state.
        let clabRoots = layouts.flatMap { [$0.root, $0.runDir] }
        let inClab = clabRoots.first { dir == $0 || dir.hasPrefix($0 + "/") }
        let made = named.map { ($0.0, ClabMade.property(pid: $0.1.pid, layouts: layouts, stage: 10)) }
        let notMine = made.first { !$0.1.passed }
        r.add(
            ClabMade.madeByHand, notMine == nil && inClab == nil,
            notMine.map { "container \($0.0) (\($0.1.evidence))" }
                ?? inClab.map { "\(dir) is inside clab's state (\($0))" }
                ?? "no clab parent, no CLAB_STAGE, no clab state for \(a.pid) and \(b.pid); \(dir) is your own",
            fix: inClab != nil
                ? "work in a directory of your own (e.g. /tmp/lab10), not in clab's state"
                : "this lab is about doing clab's work yourself: build it with unshare, mount and chroot, not `clab step`"
        )

        // Two mount namespaces, neither the host's, not the same one.
        let nsA = a.namespaceID(.mnt) ?? "?"
        let nsB = b.namespaceID(.mnt) ?? "?"
        let host = Host.namespaceID(.mnt) ?? "?"
        let separate = nsA != "?" && nsB != "?" && nsA != host && nsB != host && nsA != nsB
        r.add(
            "lab10.mount-ns-own", "A and B each have a mount namespace of their own", separate,
            "A: \(nsA), B: \(nsB), host: \(host)",
            fix: nsA == nsB && nsA != host
                ? "A and B are in one mount namespace: start each with its own unshare --mount"
                : "start each container with unshare --mount: mounts made outside one land on the host")

        // Their mounts stayed in their namespaces.
        let leaked = Mounts.table().filter { $0.mountPoint.hasPrefix(dir + "/") }.map(\.mountPoint)
        r.add(
            "lab10.binds-stay-inside", "the binds stay in the containers' namespaces", leaked.isEmpty,
            leaked.isEmpty
                ? "the host's mount table has nothing under \(dir)"
                : "the host's mount table has \(leaked.prefix(3).joined(separator: ", "))",
            fix:
                "unshare --mount --propagation private (its default): with shared propagation every bind is also made on the host. Remove them: umount \(leaked.first ?? "\(dir)/...")"
        )

        let siteID = Self.identity(site)
        let volumeID = Self.identity(volume)
        for (name, p) in named {
            let table = Mounts.parse(FS.read("/proc/\(p.pid)/mountinfo") ?? "")
            // Its own copy of the image: the mount points are made in it, not in clab's image.
            let rootID = Self.identity(p.root).map(Self.describe)
            let images = layouts.compactMap { Self.identity(ImageStore(layout: $0).rootfs(ImageStore.baseName)) }
            let isImage = images.map(Self.describe).contains { $0 == rootID }
            let isHost = rootID == Self.identity("/").map(Self.describe)
            r.add(
                "lab10.root-copy.\(name.lowercased())", "container \(name): its root is a copy of the busybox image",
                p.rootIsBusyboxImage && !isImage && !isHost,
                isHost
                    ? "/proc/\(p.pid)/root is the host's /"
                    : isImage
                        ? "/proc/\(p.pid)/root is clab's image itself (\(rootID ?? "?"))"
                        : "/proc/\(p.pid)/root/etc/clab-image \(p.rootIsBusyboxImage ? "exists" : "is missing")",
                fix: isImage
                    ? "work on a copy, not on clab's image: cp -a $(clab image path) \(dir)/\(name.lowercased()), then chroot into it"
                    : "chroot into your copy of the image: cp -a $(clab image path) \(dir)/\(name.lowercased()); ...; exec chroot \(dir)/\(name.lowercased()) sleep 600"
            )
            for (target, source, sourceID, readOnly) in [(www, site, siteID, true), (data, volume, volumeID, false)] {
                let mount = table.last { $0.mountPoint == target }
                let seen = FS.lstat(target, inRoot: p.root).map { Self.describe($0) }
                let same = mount != nil && sourceID != nil && seen == sourceID.map { Self.describe($0) }
                let flags = mount.map { $0.options.split(separator: ",").contains("ro") ? "ro" : "rw" }
                let property = ProbeName(
                    id: "lab10.\(readOnly ? "bind-ro" : "bind-rw").\(name.lowercased())",
                    wording: "container \(name): \(target) is \(source), bound \(readOnly ? "read-only" : "read-write")"
                )
                let evidence =
                    mount == nil
                    ? "/proc/\(p.pid)/mountinfo: nothing mounted on \(target)"
                    : "/proc/\(p.pid)/mountinfo: \(target) \(flags ?? "?"), \(mount?.fsType ?? "?") \(mount?.root ?? "?"); device:inode \(seen ?? "?"), \(source)'s \(sourceID.map { Self.describe($0) } ?? "missing")"
                let copy = "\(dir)/\(name.lowercased())"
                let bind = "mount --bind \(source) \(copy)\(target)"
                let fix =
                    sourceID == nil
                    ? "make \(source) first (mkdir -p \(source))"
                    : mount == nil
                        ? "inside the container's mount namespace, before chroot: \(bind)\(readOnly ? ", then mount -o remount,bind,ro \(copy)\(target)" : "")"
                        : !same
                            ? "\(target) is another directory: \(bind), in the container's mount namespace"
                            : readOnly
                                ? "a bind mount is made read-write whatever -o says to mount(2); make it read-only with a second call: mount -o remount,bind,ro \(copy)\(target) (keep the word bind: without it remount changes the whole filesystem, the host's too)"
                                : "the volume must be writable: mount -o remount,bind,rw \(copy)\(target)"
                r.add(property, same && flags == (readOnly ? "ro" : "rw"), evidence, fix: fix)
            }
            // The kernel refuses the write: mode bits would not stop root.
            let probeName = "\(www)/.clab-lab10-probe-\(getpid())"
            let refused = ProbeName(
                id: "lab10.write-refused.\(name.lowercased())",
                wording: "container \(name): a write to \(www) is refused")
            let tried = try p.probe("write", probeName, "probe\n")
            switch tried.status {
            case 1:
                let erofs = tried.output.contains("EROFS")
                r.add(
                    refused, erofs, "inside its root and mount namespace: \(tried.output.trimmed)",
                    fix:
                        "a read-only mount answers EROFS to everyone, root too: mount -o remount,bind,ro \(dir)/\(name.lowercased())\(www)"
                )
            case 0:
                _ = try? p.probe("remove", probeName)
                r.add(
                    refused, false,
                    "inside its root and mount namespace, as its root: created \(probeName) (removed again)",
                    fix:
                        "chmod and file modes do not stop root (CAP_DAC_OVERRIDE): only a read-only mount does, mount -o remount,bind,ro \(dir)/\(name.lowercased())\(www)"
                )
            default:
                r.notChecked(
                    refused, tried.output.trimmed.isEmpty ? "the probe failed" : tried.output.trimmed,
                    fix: "give the pids of two running containers, each in its own mount namespace")
            }
        }

        // The volume is shared: what A writes, B reads, and the host holds.
        let shared = ProbeName(
            id: "lab10.volume-shared", wording: "a file A writes to \(data) is read by B, and lands in \(volume)")
        let name = "\(data)/.clab-lab10-share-\(getpid())"
        let token = "written in A's mount namespace by clab lab check 10 (\(UInt64.random(in: 0...UInt64.max)))\n"
        let written = try a.probe("write", name, token)
        if written.status != 0 {
            let why = written.output.trimmed
            if written.status == 1 {
                r.add(
                    shared, false, "A could not write: \(why)",
                    fix: "the volume must be writable in both containers: mount --bind \(volume) \(dir)/a\(data)")
            } else {
                r.notChecked(shared, why, fix: "give the pids of two running containers")
            }
        } else {
            defer { _ = try? a.probe("remove", name) }
            let read = try b.probe("read", name)
            let onHost = FS.read(volume + "/" + Path.basename(name))
            let ok = read.status == 0 && read.output == token && onHost == token
            r.add(
                shared, ok,
                "A wrote \(name); B reads \(read.status == 0 ? (read.output == token ? "the same text" : "other text") : "nothing (\(read.output.trimmed))"); \(volume): \(onHost == token ? "the same text" : "not there")",
                fix: read.status != 0
                    ? "B's \(data) is not A's: bind the same host directory in both, mount --bind \(volume) \(dir)/b\(data)"
                    : "bind \(volume) itself, in both containers: mount --bind \(volume) \(dir)/a\(data)")
        }
        return r.results
    }

    /// A path's device and inode, the identity a bind mount keeps.
    static func identity(_ path: String) -> stat? {
        let fd = open(path, Int32(CLAB_O_PATH) | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        return fstat(fd, &st) == 0 ? st : nil
    }

    static func describe(_ st: stat) -> String { "\(st.st_dev):\(st.st_ino)" }
}
