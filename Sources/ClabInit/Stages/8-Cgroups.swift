import ClabSys
import Glibc

/// Stage 8: cgroups. The limits are set by the parent, on the host (ClabCgroups'
/// ContainerCgroup): it makes the container's cgroup, writes the limit files and moves the
/// first process in before "go". Inside, there is only this: the container's own cgroup
/// directories, bind-mounted read-only under /sys/fs/cgroup, so the limits can be read where
/// a program expects them (`cat /sys/fs/cgroup/memory/memory.limit_in_bytes` on v1,
/// `cat /sys/fs/cgroup/memory.max` on v2).
enum CgroupStage {
    static func showLimits(_ mounts: [String: String], in root: InRoot) throws {
        try step(8) {
            let sys = try root.resolveCreating("/sys", .directory)
            defer { close(sys) }
            try check(
                mount(
                    "tmpfs", InRoot.procPath(sys), "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=755,size=64k"),
                "mount -t tmpfs tmpfs /sys")
            for (name, hostDir) in mounts.sorted(by: { $0.key < $1.key }) {
                // Inside the fresh tmpfs: nothing of the image's is on the way any more.
                let path = name.isEmpty ? "/sys/fs/cgroup" : "/sys/fs/cgroup/" + name
                let target = try root.resolveCreating(path, .directory)
                defer { close(target) }
                try check(
                    mount(hostDir, InRoot.procPath(target), nil, UInt(MS_BIND), nil), "mount --bind \(hostDir) \(path)")
                let top = try root.resolveCreating(path, .directory)
                defer { close(top) }
                try check(
                    mount(
                        nil, InRoot.procPath(top), nil,
                        UInt(MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC), nil),
                    "mount -o remount,bind,ro \(path)")
            }
            let top = try root.resolveCreating("/sys", .directory)
            defer { close(top) }
            try check(
                mount(
                    nil, InRoot.procPath(top), nil, UInt(MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC),
                    "mode=755,size=64k"),
                "mount -o remount,ro /sys")
        }
    }
}
