import CShims
import ClabHost
import ClabSpec
import ClabSys
import Glibc

/// Stage 10's host half: `-v` requests become volume specs (a named volume is made on first
/// use; a bind source must exist), and each volume is first bound, in the host's mount namespace, at
/// containers/<id>/volumes/N with nosuid, nodev and (for `:ro`) rdonly set on it and every mount
/// below it. The container's mount namespace, created by clone3 together with its user
/// namespace, starts as a copy of the host's; the kernel locks the flags of every mount it
/// copies into a less privileged user namespace, so container root can bind these but never
/// `mount -o remount,rw` them (EPERM). A read-only bind made inside the container would not be
/// locked: the root of the namespace that made a mount may change its flags.
///
/// The staging mounts exist in the host's namespace only while init sets up (a few ms): the
/// parent removes them once the command runs, and `clab gc` removes them after a crash (they
/// are below the container's directory). The directory is root's, mode 0710 with the mapped
/// root's group: init passes through it, and nothing running as uid 100000 on the host (which
/// may be a user's subordinate id, not only container root) can swap a staging point for a
/// symlink between its mkdir and the mount, which would put the volume over a host directory.
enum VolumeStaging {
    static func dir(_ bundleDir: String) -> String { bundleDir + "/volumes" }

    /// Binds each volume's source at its staging path; returns the volumes as init must mount
    /// them (sources replaced by the staging paths).
    static func stage(_ volumes: [VolumeSpec], bundleDir: String, owner: uid_t?) throws -> [VolumeSpec] {
        guard !volumes.isEmpty else { return volumes }
        let dir = dir(bundleDir)
        try StateLayout.closeDirectory(dir, group: owner)
        var staged: [VolumeSpec] = []
        for (i, volume) in volumes.enumerated() {
            let point = dir + "/\(i)"
            if FS.isDirectory(volume.source) {
                guard mkdir(point, 0o700) == 0 else { throw SyscallError("mkdir \(point)") }
            } else {
                let fd = open(point, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw SyscallError("create \(point)") }
                close(fd)
            }
            guard mount(volume.source, point, nil, UInt(MS_BIND | MS_REC), nil) == 0 else {
                throw SyscallError("mount --rbind \(volume.source) \(point)")
            }
            let flags =
                UInt64(CLAB_MOUNT_ATTR_NOSUID | CLAB_MOUNT_ATTR_NODEV)
                | (volume.readOnly ? UInt64(CLAB_MOUNT_ATTR_RDONLY) : 0)
            guard clab_mount_setattr_recursive(point, flags) == 0 else {
                throw SyscallError("mount_setattr \(point) (\(volume.readOnly ? "ro," : "")nosuid,nodev)")
            }
            staged.append(VolumeSpec(source: point, target: volume.target, readOnly: volume.readOnly))
        }
        return staged
    }

    /// Unmounts and removes the staging mounts (idempotent; nothing there is fine). Never
    /// recursive: a point still mounted (EBUSY) is the user's volume, and stays untouched.
    static func release(bundleDir: String) {
        let dir = dir(bundleDir)
        guard FS.exists(dir) else { return }
        StageMark.host(10) { release(dir) }
    }

    private static func release(_ dir: String) {
        _ = Mounts.unmountAll(under: dir)
        var index = 0
        while true {
            let point = dir + "/\(index)"
            guard FS.exists(point) else { break }
            if rmdir(point) != 0 && errno == ENOTDIR { unlink(point) }
            index += 1
        }
        rmdir(dir)
    }
}

extension Runtime {
    /// The strings of `-v` that reach mount in the container, and the volumes' names, checked
    /// before anything is made.
    static func checkVolumeRequests(_ volumes: [VolumeRequest]) throws {
        for v in volumes {
            try ContainerSpec.checkVolumeTarget(v.target, "-v: the target")
            switch v.source {
            case .bind(let path): try ContainerSpec.checkText(path, "-v: the bind source")
            case .named(let name): try VolumeStore.validateName(name)
            }
        }
    }

    /// The volumes as the spec carries them: a named volume's data directory (made by
    /// `createVolumes`, last), a bind's source (which must exist and be reachable by container
    /// root). Makes nothing.
    func volumeSpecs(_ volumes: [VolumeRequest]) throws -> [VolumeSpec] {
        let store = VolumeStore(layout: layout)
        return try volumes.map { v in
            switch v.source {
            case .named(let name):
                return VolumeSpec(source: store.dataPath(name), target: v.target, readOnly: v.readOnly)
            case .bind(let path):
                guard FS.exists(path) else {
                    throw ClabError(
                        "-v: the bind source \(path) does not exist: create it first (clab never creates it for you)"
                    )
                }
                // Container root is uid 100000 on the host: it must be able to reach the source.
                try Self.requireSearchable(path, otherwise: "or bind a directory everyone can reach")
                return VolumeSpec(source: path, target: v.target, readOnly: v.readOnly)
            }
        }
    }

    /// Makes the named volumes that do not exist yet, once nothing else can fail; returns the
    /// ones it made, for `removeVolumes` should a later step fail. A failure removes them too.
    func createVolumes(_ volumes: [VolumeRequest], log: (String) -> Void) throws -> [String] {
        let store = VolumeStore(layout: layout)
        var made: [String] = []
        do {
            for v in volumes {
                guard case .named(let name) = v.source, try store.create(name) else { continue }
                made.append(name)
                log("created volume '\(name)'")
            }
        } catch {
            removeVolumes(made)
            throw error
        }
        return made
    }

    /// The volumes this run made, still empty and unused: a failed start leaves none behind.
    func removeVolumes(_ names: [String]) {
        let store = VolumeStore(layout: layout)
        for name in names { try? store.remove(name) }
    }
}
