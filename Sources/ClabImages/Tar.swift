import CShims
import ClabHost
import ClabSys
import FoundationEssentials
import Glibc

/// A canonical tar of a directory tree: entries sorted by path, modification times zeroed, no
/// user or group names, ustar headers with PAX records where ustar cannot hold a field. The
/// same tree always gives the same bytes, so the sha256 of the tar names the content, as an
/// OCI layer digest does. Overlay whiteouts (character device 0/0) become OCI `.wh.` files.
public struct CanonicalTar {
    public let root: String
    /// Subtracted from every uid and gid: a layer's copy owned by the mapped range (stage 9)
    /// archives to the same bytes as the layer itself.
    public let idShift: UInt32

    public init(root: String, idShift: UInt32 = 0) {
        self.root = root
        self.idShift = idShift
    }

    /// Streams the tar to `sink`; returns its size in bytes.
    @discardableResult
    public func write(to sink: (ArraySlice<UInt8>) throws -> Void) throws -> Int {
        var total = 0
        func emit(_ bytes: [UInt8]) throws {
            try sink(bytes[...])
            total += bytes.count
        }
        for rel in try Self.paths(root) {
            try emit(try entry(rel))
            var st = stat()
            guard lstat(root + "/" + rel, &st) == 0 else { throw SyscallError("lstat \(root)/\(rel)") }
            if (st.st_mode & S_IFMT) == S_IFDIR && Self.isOpaque(root + "/" + rel) {
                // An overlay opaque directory hides everything below it: OCI's marker file.
                try emit(
                    header(
                        name: rel + "/.wh..wh..opq", mode: 0o644, uid: 0, gid: 0, size: 0, type: UInt8(ascii: "0"),
                        link: "", devMajor: 0, devMinor: 0))
            }
            if (st.st_mode & S_IFMT) == S_IFREG && !isWhiteout(st) && st.st_size > 0 {
                // A tree a container wrote: if the file became a symlink or a FIFO since lstat, refuse
                // it rather than archive (or block on) what it leads to.
                let fd = open(root + "/" + rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                guard fd >= 0 else { throw SyscallError("open \(root)/\(rel)") }
                defer { close(fd) }
                var now = stat()
                guard fstat(fd, &now) == 0, (now.st_mode & S_IFMT) == S_IFREG, now.st_ino == st.st_ino else {
                    throw ClabError("\(root)/\(rel) changed while it was being archived")
                }
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                var left = Int(st.st_size)
                while left > 0 {
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, left)) }
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw ClabError("\(root)/\(rel) changed while it was being archived") }
                    try sink(buffer[0..<n])
                    total += n
                    left -= n
                }
                let pad = (512 - Int(st.st_size) % 512) % 512
                if pad > 0 { try emit([UInt8](repeating: 0, count: pad)) }
            }
        }
        try emit([UInt8](repeating: 0, count: 1024))  // two zero blocks end the archive
        return total
    }

    /// sha256 and size of the tar, without writing it anywhere.
    public func digest() throws -> (digest: String, size: Int) {
        var hasher = SHA256()
        let size = try write { hasher.update($0) }
        return ("sha256:" + hasher.finalize(), size)
    }

    /// Every path below root, relative, sorted by bytes (directories before their contents).
    static func paths(_ root: String) throws -> [String] {
        FS.walk(root).map { String($0.dropFirst(root.count + 1)) }.sorted {
            Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8))
        }
    }

    /// overlayfs marks a directory that replaced one from a lower layer with an xattr:
    /// user.overlay.opaque when mounted in a user namespace (userxattr), trusted.* otherwise.
    public static func isOpaque(_ path: String) -> Bool {
        for name in ["user.overlay.opaque", "trusted.overlay.opaque"] {
            var value: [UInt8] = [0, 0]
            if clab_lgetxattr(path, name, &value, UInt(value.count)) == 1 && value[0] == UInt8(ascii: "y") {
                return true
            }
        }
        return false
    }

    func isWhiteout(_ st: stat) -> Bool {
        (st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == 0
    }

    /// The header block(s) of one entry.
    func entry(_ rel: String) throws -> [UInt8] {
        let path = root + "/" + rel
        var st = stat()
        guard lstat(path, &st) == 0 else { throw SyscallError("lstat \(path)") }
        var name = rel
        var type: UInt8 = UInt8(ascii: "0")
        var size = 0
        var link = ""
        var devMajor: UInt32 = 0
        var devMinor: UInt32 = 0
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            type = UInt8(ascii: "5")
            name += "/"
        case S_IFLNK:
            type = UInt8(ascii: "2")
            link = FS.readLink(path) ?? ""
        case S_IFCHR where isWhiteout(st):
            // OCI whiteout: an empty file named .wh.<name> beside where <name> was.
            let dir = Path.dirname(rel)
            name = (dir == "." ? "" : dir + "/") + ".wh." + Path.basename(rel)
        case S_IFCHR, S_IFBLK:
            type = UInt8(ascii: (st.st_mode & S_IFMT) == S_IFCHR ? "3" : "4")
            (devMajor, devMinor) = LayerStore.deviceNumbers(st.st_rdev)
        case S_IFIFO:
            type = UInt8(ascii: "6")
        default:
            size = Int(st.st_size)
        }
        let mode = isWhiteout(st) ? 0o644 : Int(st.st_mode & 0o7777)
        var pax: [(String, String)] = []
        if name.utf8.count > 100 { pax.append(("path", name)) }
        if link.utf8.count > 100 { pax.append(("linkpath", link)) }
        if size > 0o77777777777 { pax.append(("size", "\(size)")) }
        var blocks: [UInt8] = []
        if !pax.isEmpty {
            var records: [UInt8] = []
            for (key, value) in pax {
                // "<len> key=value\n", where len counts itself.
                let body = " \(key)=\(value)\n"
                var len = body.utf8.count + 1
                while "\(len)".utf8.count + body.utf8.count > len { len += 1 }
                records += Array("\(len)\(body)".utf8)
            }
            blocks += header(
                name: "PaxHeaders/" + String(Path.basename(name).prefix(80)), mode: 0o644, uid: 0, gid: 0,
                size: records.count, type: UInt8(ascii: "x"), link: "", devMajor: 0, devMinor: 0)
            blocks += records + [UInt8](repeating: 0, count: (512 - records.count % 512) % 512)
        }
        blocks += header(
            name: name, mode: mode, uid: Int(st.st_uid &- idShift), gid: Int(st.st_gid &- idShift), size: size,
            type: type, link: link,
            devMajor: devMajor, devMinor: devMinor)
        return blocks
    }

    func header(
        name: String, mode: Int, uid: Int, gid: Int, size: Int, type: UInt8, link: String, devMajor: UInt32,
        devMinor: UInt32
    ) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ offset: Int, _ width: Int) {
            for (i, b) in text.utf8.prefix(width).enumerated() { h[offset + i] = b }
        }
        func octal(_ value: Int, _ offset: Int, _ width: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits, offset, width - 1)
        }
        put(name, 0, 100)
        octal(mode, 100, 8)
        octal(uid, 108, 8)
        octal(gid, 116, 8)
        octal(min(size, 0o77777777777), 124, 12)
        octal(0, 136, 12)  // mtime: zeroed, so identical trees give identical tars
        h[156] = type
        put(link, 157, 100)
        put("ustar", 257, 6)
        put("00", 263, 2)
        octal(Int(devMajor), 329, 8)
        octal(Int(devMinor), 337, 8)
        for i in 148..<156 { h[i] = UInt8(ascii: " ") }
        let sum = h.reduce(0) { $0 + Int($1) }
        octal(sum, 148, 7)
        h[155] = UInt8(ascii: " ")
        return h
    }
}
