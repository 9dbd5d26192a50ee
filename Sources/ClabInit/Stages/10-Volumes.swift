import CShims
import ClabSpec
import ClabSys
import Glibc

/// Stage 10: volumes. A volume is a directory outside the container's layers, bind-mounted at
/// a path inside: what is written there outlives the container, and two containers that mount
/// it see each other's writes. `:ro` makes the bind read-only.
///
/// The target is resolved inside the container's root (InRoot): an image could hold
/// `/data -> ../../..` or a dangling `/data -> /etc/x`, and a path walked naively from the host
/// would mount over, or create, the host's own files.
///
/// The source is not the user's directory itself but clab's bind of it, made by the parent in
/// the host's user namespace (VolumeStaging, in ClabRuntime's `Stages/10-Volumes.swift`) with
/// nosuid, nodev and, for `:ro`, rdonly. When this namespace was made, the kernel copied that
/// mount into a namespace owned by a less privileged user namespace and *locked* those flags:
/// container root may bind it here, but `mount -o remount,rw` on it fails with EPERM. A
/// read-only bind made in here would not be locked: root of the namespace that made a mount
/// may change its flags.
enum VolumeStage {
    static func mountVolumes(_ volumes: [VolumeSpec], in root: InRoot) throws {
        try step(10) {
            for volume in volumes {
                let isDir = FS.isDirectory(volume.source)
                let target = try root.resolveCreating(volume.target, isDir ? .directory : .file)
                defer { close(target) }
                try check(
                    mount(volume.source, InRoot.procPath(target), nil, UInt(MS_BIND | MS_REC), nil),
                    "mount --bind \(volume.source) \(volume.target)")
            }
        }
    }
}
