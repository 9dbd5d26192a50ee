import Glibc

/// Stage 7: a user namespace (CLONE_NEWUSER). Ids inside map to other ids outside, through
/// /proc/<pid>/uid_map and gid_map, which only a process outside (the parent) may write, once.
/// Container root is uid 0 with every capability — over objects its namespaces own — and
/// uid 100000 to everyone else on the host.
///
/// The child waits for "go" until the maps exist, then (raw syscalls, in C) setresuid(0).
/// Files: the container's root is a copy of the image owned by 100000+ (made once per range),
/// so container root owns its files and what it creates is owned by 100000 on the host.
public enum UserStage {
    public static func writeMaps(pid: pid_t, mapping: IDMapping) throws {
        for file in ["uid_map", "gid_map"] {
            do {
                try FS.write(mapping.mapLine, to: "/proc/\(pid)/\(file)")
            } catch let error as SyscallError {
                throw ClabError(
                    "stage 7: write /proc/\(pid)/\(file) \"\(mapping.mapLine.dropLast())\": \(errnoDescription(error.errno))"
                )
            }
        }
    }
}
