import Glibc

/// Stage 8: cgroups. The limits are set by the parent, on the host (ClabCore's
/// ContainerCgroup): it makes the container's cgroup, writes the limit files and moves the
/// first process in before "go". Inside, there is only this: the container's own cgroup
/// directories, bind-mounted read-only under /sys/fs/cgroup, so the limits can be read where
/// a program expects them (`cat /sys/fs/cgroup/memory/memory.limit_in_bytes` on v1,
/// `cat /sys/fs/cgroup/memory.max` on v2).
enum CgroupStage {
    static func showLimits(_ mounts: [String: String], root: String) throws {
        try step(8) {
            let sys = root + "/sys"
            try check(
                mount("tmpfs", sys, "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=755,size=64k"),
                "mount -t tmpfs tmpfs \(sys)")
            try check(mkdir(sys + "/fs", 0o755), "mkdir \(sys)/fs")
            try check(mkdir(sys + "/fs/cgroup", 0o755), "mkdir \(sys)/fs/cgroup")
            for (name, hostDir) in mounts.sorted(by: { $0.key < $1.key }) {
                let target = name.isEmpty ? sys + "/fs/cgroup" : sys + "/fs/cgroup/" + name
                if !name.isEmpty { try check(mkdir(target, 0o755), "mkdir \(target)") }
                try check(mount(hostDir, target, nil, UInt(MS_BIND), nil), "mount --bind \(hostDir) \(target)")
                try check(
                    mount(
                        nil, target, nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC), nil
                    ),
                    "mount -o remount,bind,ro \(target)")
            }
            try check(
                mount(
                    nil, sys, nil, UInt(MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=755,size=64k"),
                "mount -o remount,ro \(sys)")
        }
    }
}
