import CShims
import ClabSys
import Glibc

/// A copy of a tree with every owner moved from one id range to another: the stage-7 copy of an
/// image and the stage-9 copies of layers (0 → 100000), and a container's writable layer on its
/// way to becoming a layer (100000 → 0).
///
/// Why a copy, made this way: the trees owned by the mapped range are writable by anything that
/// runs as uid 100000 on the host, and that is not only container root. `useradd` hands out
/// subordinate ids from 100000 up, so the first user of a machine may map uid 100000 with
/// newuidmap. Shifting such a tree in place, by path (chown, then chmod to restore setuid bits)
/// gave root's chown to whatever that uid put there meanwhile: a hard link to its own setuid
/// file in a RUN step's upper directory became setuid root, and a directory swapped for a
/// symlink between the walk and the chown turned a host file over. Here every entry is opened
/// from its parent's fd without following symlinks, and the ids are set on new files, in a
/// directory only root can enter, before the copy is renamed into place: what another uid links
/// to or swaps in the source cannot be reached through the copy.
///
/// Kept: regular files (sparse ones stay sparse), directories, symlinks, hard links within the
/// tree, FIFOs, the device nodes a layer may hold (overlay whiteouts, /dev/null and the like:
/// LayerStore.allowsDevice; any other is refused), modes with their setuid bits, times, and the
/// overlay opaque marker. Sockets are not copied.
public enum ShiftedCopy {
    /// The owner mapping: ids from `from` up move to `to` up; lower ids stay. An id that would
    /// pass 2^32 (an imported tar may say uid 4294967294) becomes the range's nobody (65534).
    public struct Shift: Sendable {
        public let from: UInt32
        public let to: UInt32

        public init(from: UInt32, to: UInt32) {
            self.from = from
            self.to = to
        }

        public func callAsFunction(_ id: UInt32) -> UInt32 {
            guard id >= from else { return id }
            let (shifted, overflow) = (id - from).addingReportingOverflow(to)
            return overflow ? to &+ 65534 : shifted
        }
    }

    /// `copy` into `scratch/tree`, `scratch` made first as root's alone (mode 0700): the copy is
    /// out of every other uid's reach until the caller moves it into place (and removes
    /// `scratch`, also after a failure). Returns the tree's path.
    public static func copyAside(_ source: String, scratch: String, shift: Shift) throws -> String {
        guard mkdir(scratch, 0o700) == 0 else { throw SyscallError("mkdir \(scratch)") }
        let tree = scratch + "/tree"
        try copy(source, to: tree, shift: shift)
        return tree
    }

    /// Copies `source` to `target` (which must not exist; its parent must be root's alone),
    /// moving owners by `shift`.
    public static func copy(_ source: String, to target: String, shift: Shift) throws {
        let src = open(source, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard src >= 0 else { throw SyscallError("open \(source)") }
        defer { close(src) }
        guard mkdir(target, 0o700) == 0 else { throw SyscallError("mkdir \(target)") }
        let dst = open(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dst >= 0 else { throw SyscallError("open \(target)") }
        defer { close(dst) }
        var copier = Copier(shift: shift, source: source, rootFD: dst)
        try copier.directory(src, into: dst, rel: "")
        try copier.finish(dst, like: src, what: source)
    }

    private struct Copier {
        let shift: Shift
        let source: String
        /// The copy's root: hard links are made relative to it.
        let rootFD: Int32
        /// A source inode seen with more than one link, and where its first copy is.
        var linked: [Pair: String] = [:]

        struct Pair: Hashable {
            let device: UInt64
            let inode: UInt64
        }

        init(shift: Shift, source: String, rootFD: Int32) {
            self.shift = shift
            self.source = source
            self.rootFD = rootFD
        }

        mutating func directory(_ src: Int32, into dst: Int32, rel: String) throws {
            for name in try Self.names(src, path: source + rel) {
                let path = source + rel + "/" + name
                var st = stat()
                guard fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                    if errno == ENOENT { continue }  // removed meanwhile
                    throw SyscallError("lstat \(path)")
                }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    let sub = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    guard sub >= 0 else { throw Self.changed(path) }
                    defer { close(sub) }
                    guard mkdirat(dst, name, 0o700) == 0 else { throw SyscallError("mkdir (copy of) \(path)") }
                    let out = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    guard out >= 0 else { throw SyscallError("open (copy of) \(path)") }
                    defer { close(out) }
                    try directory(sub, into: out, rel: rel + "/" + name)
                    try finish(out, like: sub, what: path)
                case S_IFREG:
                    let pair = Pair(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
                    if st.st_nlink > 1, let first = linked[pair] {
                        guard linkat(rootFD, first, dst, name, 0) == 0 else {
                            throw SyscallError("link (copy of) \(path)")
                        }
                        continue
                    }
                    let file = openat(src, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                    guard file >= 0 else { throw Self.changed(path) }
                    defer { close(file) }
                    var now = stat()
                    guard fstat(file, &now) == 0, (now.st_mode & S_IFMT) == S_IFREG, now.st_ino == st.st_ino else {
                        throw Self.changed(path)
                    }
                    let out = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                    guard out >= 0 else { throw SyscallError("create (copy of) \(path)") }
                    defer { close(out) }
                    try Self.copyData(file, to: out, size: Int(now.st_size), what: path)
                    try finish(out, like: file, what: path)
                    if now.st_nlink > 1 { linked[pair] = String((rel + "/" + name).dropFirst()) }
                case S_IFLNK:
                    guard let link = Self.readLink(src, name) else { throw Self.changed(path) }
                    guard symlinkat(link, dst, name) == 0 else { throw SyscallError("symlink (copy of) \(path)") }
                    try node(dst, name, st, what: path)
                case S_IFCHR
                where LayerStore.allowsDevice(
                    character: true, major: LayerStore.deviceNumbers(st.st_rdev).major,
                    minor: LayerStore.deviceNumbers(st.st_rdev).minor):
                    // An overlay whiteout (0/0), or /dev/null and the like of the base image.
                    guard mknodat(dst, name, S_IFCHR | 0o600, st.st_rdev) == 0 else {
                        throw SyscallError("mknod (copy of) \(path)")
                    }
                    try node(dst, name, st, what: path)
                    guard fchmodat(dst, name, st.st_mode & 0o7777, 0) == 0 else {
                        throw SyscallError("chmod (copy of) \(path)")
                    }
                case S_IFIFO:
                    guard mkfifoat(dst, name, 0o600) == 0 else { throw SyscallError("mkfifo (copy of) \(path)") }
                    try node(dst, name, st, what: path)
                    guard fchmodat(dst, name, st.st_mode & 0o7777, 0) == 0 else {
                        throw SyscallError("chmod (copy of) \(path)")
                    }
                case S_IFCHR, S_IFBLK:
                    // What LayerStore.add would refuse, refused before it exists anywhere.
                    let (major, minor) = LayerStore.deviceNumbers(st.st_rdev)
                    let kind = (st.st_mode & S_IFMT) == S_IFCHR ? "character" : "block"
                    throw ClabError(
                        "the layer holds a device node, \(rel)/\(name), a \(kind) device \(major):\(minor)\(LayerStore.devicePolicy)",
                        exitCode: 2)
                default:
                    continue  // a socket: nothing a layer can hold
                }
            }
        }

        /// Owner, mode (after the owner: chown clears setuid bits), times and the overlay's opaque
        /// marker of `src`, on its copy `dst` (both fds, nothing looked up by name).
        func finish(_ dst: Int32, like src: Int32, what: String) throws {
            var st = stat()
            guard fstat(src, &st) == 0 else { throw SyscallError("stat \(what)") }
            guard fchown(dst, shift(st.st_uid), shift(st.st_gid)) == 0, fchmod(dst, st.st_mode & 0o7777) == 0 else {
                throw SyscallError("chown (copy of) \(what)")
            }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                for name in ["user.overlay.opaque", "trusted.overlay.opaque"] {
                    var value: [UInt8] = [0, 0]
                    let n = clab_fgetxattr(src, name, &value, UInt(value.count))
                    if n == 1 && value[0] == UInt8(ascii: "y") {
                        guard clab_fsetxattr(dst, name, "y", 1, 0) == 0 else {
                            throw SyscallError("setxattr \(name) (copy of) \(what)")
                        }
                    }
                }
            }
            let times = [st.st_atim, st.st_mtim]
            _ = futimens(dst, times)
        }

        /// Owner and times of a symlink, whiteout or FIFO just made in our copy.
        func node(_ dir: Int32, _ name: String, _ st: stat, what: String) throws {
            guard fchownat(dir, name, shift(st.st_uid), shift(st.st_gid), AT_SYMLINK_NOFOLLOW) == 0 else {
                throw SyscallError("chown (copy of) \(what)")
            }
            let times = [st.st_atim, st.st_mtim]
            _ = utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW)
        }

        static func changed(_ path: String) -> ClabError {
            ClabError("\(path) changed while it was being copied (it is written by uid 100000 on the host meanwhile?)")
        }

        /// The names in a directory, read from a duplicate of its fd.
        static func names(_ fd: Int32, path: String) throws -> [String] {
            let copy = dup(fd)
            guard copy >= 0, let dir = fdopendir(copy) else {
                if copy >= 0 { close(copy) }
                throw SyscallError("opendir \(path)")
            }
            defer { closedir(dir) }
            var out: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { cString($0.bindMemory(to: CChar.self)) }
                if name != "." && name != ".." { out.append(name) }
            }
            return out
        }

        static func readLink(_ dir: Int32, _ name: String) -> String? {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlinkat(dir, name, &buffer, buffer.count - 1)
            return n >= 0 ? cString(buffer[0..<n]) : nil
        }

        /// The file's data extents (SEEK_DATA/SEEK_HOLE), then its size: a sparse file stays sparse.
        static func copyData(_ from: Int32, to out: Int32, size: Int, what: String) throws {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var offset = 0
            while offset < size {
                let data = lseek(from, off_t(offset), CLAB_SEEK_DATA)
                if data < 0 && errno == ENXIO { break }  // only a hole is left
                guard data >= 0 else { throw SyscallError("seek \(what)") }
                let hole = lseek(from, data, CLAB_SEEK_HOLE)
                guard hole >= 0 else { throw SyscallError("seek \(what)") }
                let end = min(Int(hole), size)
                var at = Int(data)
                while at < end {
                    let n = buffer.withUnsafeMutableBytes {
                        pread(from, $0.baseAddress, min($0.count, end - at), off_t(at))
                    }
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw changed(what) }
                    var written = 0
                    while written < n {
                        let w = buffer[written..<n].withUnsafeBytes {
                            pwrite(out, $0.baseAddress, $0.count, off_t(at + written))
                        }
                        if w < 0 && errno == EINTR { continue }
                        guard w > 0 else { throw SyscallError("write (copy of) \(what)") }
                        written += w
                    }
                    at += n
                }
                guard end > Int(data) else { break }  // data past the size it had: the file grew meanwhile
                offset = end
            }
            guard ftruncate(out, off_t(size)) == 0 else { throw SyscallError("truncate (copy of) \(what)") }
        }
    }
}
