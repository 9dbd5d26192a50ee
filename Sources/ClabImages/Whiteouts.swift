import CShims
import ClabHost
import ClabSys
import FoundationEssentials
import Glibc

extension OCILayout {
    /// OCI whiteouts to overlayfs's own form, which stage 9 stacks directly:
    /// `.wh.NAME` (an empty file) becomes NAME, a character device 0/0 with the marker's owner;
    /// `.wh..wh..opq` becomes the xattr user.overlay.opaque=y on its directory (user.*, since the
    /// overlay is mounted with userxattr inside the user namespace). Other `.wh..wh.` names are
    /// AUFS bookkeeping and are dropped. Returns the counts (whiteouts, opaque directories).
    static func convertWhiteouts(_ tree: String) throws -> (Int, Int) {
        let markers = FS.walk(tree).filter { Path.basename($0).hasPrefix(".wh.") }.sorted()
        var whiteouts = 0
        var opaque = 0
        for marker in markers {
            var st = stat()
            guard lstat(marker, &st) == 0 else { continue }  // under a path an earlier whiteout removed
            let dir = Path.dirname(marker)
            let name = String(Path.basename(marker).dropFirst(4))
            if name == ".wh..opq" {
                guard clab_lsetxattr(dir, "user.overlay.opaque", "y", 1, 0) == 0 else {
                    throw ClabError(
                        "cannot mark \(dir) opaque (xattr user.overlay.opaque): \(errnoDescription(errno))")
                }
                opaque += 1
                try FS.removeTree(marker)
            } else if name.hasPrefix(".wh.") || name.isEmpty {
                try FS.removeTree(marker)
            } else if name == "." || name == ".." {
                throw ClabError(
                    "the layer has a whiteout for '\(name)' in /\(dir.dropFirst(tree.count + 1))", exitCode: 2)
            } else {
                try FS.removeTree(marker)
                // A whiteout hides the name: nothing of its own. (walk lists real directories
                // only, so `dir` is inside the tree; a symlink at the name is removed, not followed.)
                var old = stat()
                if lstat(dir + "/" + name, &old) == 0 {
                    if (old.st_mode & S_IFMT) == S_IFDIR {
                        try FS.removeTree(dir + "/" + name)
                    } else if unlink(dir + "/" + name) != 0 {
                        throw SyscallError("unlink \(dir)/\(name)")
                    }
                }
                guard mknod(dir + "/" + name, S_IFCHR, 0) == 0 else {
                    throw ClabError("mknod \(dir)/\(name) (a whiteout): \(errnoDescription(errno))")
                }
                guard lchown(dir + "/" + name, st.st_uid, st.st_gid) == 0 else {
                    throw SyscallError("lchown \(dir)/\(name)")
                }
                whiteouts += 1
            }
        }
        return (whiteouts, opaque)
    }
}
