import ClabSpec
import ClabSys
import Glibc

/// Stage 9: the root is an overlay. The image's layers are read-only lower directories,
/// stacked (the top one wins); the container writes into its own upper directory. Reading a
/// file finds it in the highest layer that has it; changing one from a layer first copies it
/// up; deleting one leaves a whiteout (a character device 0/0) in the upper directory. The
/// layers never change, so many containers share them, and the container's changes are one
/// directory: what `clab diff` lists and `clab commit` turns into a new layer.
///
/// Mounted here, inside the container's user and mount namespaces (overlayfs allows that since
/// Linux 5.11); the layers are copies owned by the mapped range (see ImageStore), so container
/// root may copy up and delete what they hold.
enum OverlayStage {
    /// The image's WORKDIR, made (with its parents) if the layers lack it, as Docker does.
    static func enterWorkdir(_ workdir: String) throws {
        try step(9) {
            var path = ""
            for part in workdir.split(separator: "/") {
                path += "/" + part
                if mkdir(path, 0o755) != 0 && errno != EEXIST { throw SyscallError("mkdir \(path)") }
            }
            try check(chdir(workdir), "chdir \(workdir)")
        }
    }

    static func mountLayers(_ overlay: OverlaySpec, at root: String) throws {
        try step(9) {
            try check(
                mount("overlay", root, "overlay", 0, overlay.options),
                "mount -t overlay overlay -o \(overlay.options) \(root)")
        }
    }
}
