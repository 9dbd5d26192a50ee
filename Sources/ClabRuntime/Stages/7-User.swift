import ClabHost
import ClabImages
import ClabSpec
import ClabSys
import Glibc

/// Stage 7's host half: a user namespace (CLONE_NEWUSER). Ids inside map to other ids outside,
/// through /proc/<pid>/uid_map and gid_map, which only a process outside (the parent) may
/// write, once. Container root is uid 0 with every capability — over objects its namespaces
/// own — and uid 100000 to everyone else on the host.
///
/// The child waits for "go" until the maps exist, then (raw syscalls, in C) setresuid(0).
/// Files: the container's root is a copy of the image owned by 100000+ (made once per range),
/// so container root owns its files and what it creates is owned by 100000 on the host.
enum UserStage {
    static func writeMaps(pid: pid_t, mapping: IDMapping) throws {
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

extension Runtime {
    /// Whether the container gets a user namespace. `--userns host` (stage 12): container root
    /// is the host's root, so only clab's own image may run that way (12-Hardening checks it).
    /// Before anything is made or built: a state directory container root cannot reach is
    /// refused at once, and leaves nothing behind.
    func planUserNamespace(_ request: RunRequest) throws -> Bool {
        guard request.stage.has(.user) && !request.security.hostUserNamespace else { return false }
        if let why = Host.userNamespacesAvailable() { throw ClabError("stage 7 needs user namespaces, but \(why)") }
        try Self.requireSearchable(layout.containersDir)
        try Self.requireSearchable(initPath)
        return true
    }

    /// The mapping, and the root below stage 9: the image's copy owned by the mapped range.
    /// From stage 9 the root is an overlay of the layers' shifted copies (9-Overlay makes them).
    func mapRoot(_ request: RunRequest, imageRoot: inout String, log: (String) -> Void) throws -> IDMapping {
        if request.stage.layersImage {
            try Self.requireSearchable(images.layerStore.dir)
        } else {
            imageRoot = try images.ensureShifted(ImageStore.baseName, base: request.idMapping.host, log: log)
            try Self.requireSearchable(imageRoot)
        }
        return request.idMapping
    }

    /// A user whose subordinate ids overlap the mapping can act as this container's root.
    static func subordinateWarnings(_ mapping: IDMapping) -> [String] {
        Host.subordinateOwners(overlapping: mapping).map { owner in
            "warning: \(owner) owns subordinate ids that overlap \(mapping.host)-\(mapping.host + mapping.count - 1) (/etc/subuid or /etc/subgid): that user can act as this container's root on the host (README: Security model)"
        }
    }

    /// In a user namespace container root is uid 100000 to the host: every directory on the way
    /// to its files must let it search: as "others", or as owner or group 100000 (clab's own
    /// state directories, closed to everyone else). Say so before the kernel says EACCES.
    static func requireSearchable(
        _ path: String, otherwise: String = "or use a --root below a searchable directory"
    ) throws {
        let id = IDMapping.defaultRange.host
        var dir = path
        while dir != "/" && !dir.isEmpty {
            dir = Path.dirname(dir)
            var st = stat()
            guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { continue }
            // The kernel's order: the owner's bits for the owner, else the group's, else others'.
            let bits = st.st_uid == id ? st.st_mode >> 6 : st.st_gid == id ? st.st_mode >> 3 : st.st_mode
            if bits & 0o001 == 0 {
                throw ClabError(
                    "stage 7: container root is uid 100000 on the host and cannot enter \(dir) (mode \(String(st.st_mode & 0o7777, radix: 8))): run `chmod o+x \(dir)` \(otherwise)"
                )
            }
        }
    }
}
