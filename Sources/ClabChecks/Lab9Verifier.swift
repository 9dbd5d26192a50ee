import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 9: an overlay root by hand, in a work directory DIR: a layer of the learner's own
/// (DIR/layer2, holding /etc/motd) over the busybox image, a writable layer (DIR/upper, with
/// DIR/work), mounted on DIR/merged in the host's mount namespace; a file changed, one deleted,
/// one created through DIR/merged; and a commit, DIR/commit.tar, of the writable layer alone.
/// The verifier reads the host's mount table, the directories (never following a symlink out of
/// them) and the tar's headers; it runs nothing.
public enum Lab9Verifier {
    public static let motd = "hello from layer 2"
    public static let deleted = "etc/hosts"
    public static let created = "hello.txt"

    public static func verify(dir given: String, layouts: [StateLayout]) -> [ProbeResult] {
        // Absolute, without "." or ".." or a trailing slash: the mount table shows it that way.
        let absolute = given.hasPrefix("/") ? given : FileManager.default.currentDirectoryPath + "/" + given
        let dir = URL(fileURLWithPath: absolute).standardizedFileURL.path
        var r = LabResults(stage: 9)
        let merged = dir + "/merged"
        let upper = dir + "/upper"
        let layer2 = dir + "/layer2"
        let mountCommand =
            "mount -t overlay overlay -o lowerdir=\(layer2):$(clab image path),upperdir=\(upper),workdir=\(dir)/work \(merged)"

        // Made by hand: not one of clab's writable layers, and mounted where the host sees it.
        let clabRoots = layouts.flatMap { [$0.root, $0.runDir] }
        let inClab = clabRoots.first { dir == $0 || dir.hasPrefix($0 + "/") }
        let mount = Mounts.table().last { $0.mountPoint == merged }
        r.add(
            ClabMade.madeByHand, inClab == nil,
            inClab.map { "\(dir) is inside clab's state (\($0))" } ?? "\(dir) is not clab's state",
            fix: "work in a directory of your own (e.g. /tmp/lab9), with the mount command, not clab")
        r.add(
            "lab9.overlay-mount", "\(merged) is an overlay mount", mount?.fsType == "overlay",
            mount.map { "host mount table: \(merged) is \($0.fsType)" }
                ?? "host mount table: nothing mounted on \(merged)",
            fix: mountCommand)
        let options = Self.options(mount?.superOptions ?? "")
        let lowers = (options["lowerdir"] ?? "").split(separator: ":").map(String.init)
        let imageBelow = lowers.count == 2 && FS.lstat(lowers[1], beneath: "etc/clab-image") != nil
        r.add(
            "lab9.layers", "its layers: \(layer2) above the busybox image",
            mount != nil && lowers.first == layer2 && imageBelow,
            "lowerdir=\(options["lowerdir"] ?? "?")",
            fix: "lowerdir lists the top layer first, separated by colons: lowerdir=\(layer2):$(clab image path)")
        r.add(
            "lab9.upper-work", "its writable layer: upperdir \(upper), workdir \(dir)/work",
            options["upperdir"] == upper && options["workdir"] == dir + "/work",
            "upperdir=\(options["upperdir"] ?? "?"), workdir=\(options["workdir"] ?? "?")",
            fix: "upperdir and workdir must be two empty directories on the same filesystem: \(mountCommand)")

        // The layers below are unchanged.
        let layerMotd = FS.read("/etc/motd", inRoot: layer2, limit: 4096).map { $0.trimmed }
        let imageHosts = lowers.count == 2 ? FS.lstat(lowers[1], beneath: deleted) != nil : false
        r.add(
            "lab9.lowers-unchanged", "the lower layers are unchanged", layerMotd == motd && imageHosts,
            "\(layer2)/etc/motd reads \(layerMotd.map { "\"\($0)\"" } ?? "nothing"); the image's /\(deleted) \(imageHosts ? "is there" : "is missing")",
            fix:
                "change files through \(merged) only: \(layer2)/etc/motd must still read \"\(motd)\" (write it again), and the image keeps /\(deleted)"
        )

        // The three changes, each in the upper layer.
        let copied = FS.lstat(upper, beneath: "etc/motd")
        let mergedMotd = mount == nil ? nil : FS.read("/etc/motd", inRoot: merged)
        let copiedOK =
            copied.map { ($0.st_mode & S_IFMT) == S_IFREG } == true && mergedMotd?.hasPrefix(motd) == true
            && mergedMotd?.trimmed != motd
        r.add(
            "lab9.copy-up", "a changed file was copied up", copiedOK,
            "\(upper)/etc/motd \(copied == nil ? "is missing" : "exists"); \(merged)/etc/motd: \(mergedMotd.map { "\"\($0.trimmed.replacing("\n", with: "\\n"))\"" } ?? "unreadable")",
            fix:
                "append a line through the mount: echo changed >> \(merged)/etc/motd (the kernel copies the file up first)"
        )
        let whiteout = FS.lstat(upper, beneath: deleted)
        let isWhiteout = whiteout.map { ($0.st_mode & S_IFMT) == S_IFCHR && $0.st_rdev == 0 } ?? false
        let goneAbove = mount != nil && FS.lstat("/" + deleted, inRoot: merged) == nil
        r.add(
            "lab9.whiteout", "a deleted file left a whiteout", isWhiteout && goneAbove,
            "\(upper)/\(deleted) is \(whiteout == nil ? "missing" : isWhiteout ? "a character device 0/0" : "not a whiteout"); \(merged)/\(deleted) \(goneAbove ? "is gone" : "is still there")",
            fix: "delete it through the mount: rm \(merged)/\(deleted) (the image's file stays, hidden by the whiteout)"
        )
        let new = FS.lstat(upper, beneath: created)
        let newInLayers = FS.lstat(layer2, beneath: created) != nil
        r.add(
            "lab9.new-file-upper", "a new file landed in the writable layer", new != nil && !newInLayers,
            "\(upper)/\(created) \(new == nil ? "is missing" : "exists"); in \(layer2): \(newInLayers ? "yes" : "no")",
            fix: "create it through the mount: echo hello > \(merged)/\(created)")

        // The commit: the upper layer as a tar, whiteouts included, and nothing else.
        let commit = dir + "/commit.tar"
        switch TarHeaders.read(commit) {
        case .failure(let error):
            r.add(
                "lab9.commit", "the commit holds the three changes and nothing else", false, error.message,
                fix: "tar -C \(upper) -cf \(commit) .  (the writable layer alone is the new layer)")
        case .success(let entries):
            let names = Dictionary(entries.map { (Self.clean($0.name), $0) }, uniquingKeysWith: { a, _ in a })
            let hasNew = names[created]?.type == .file
            let hasMotd = names["etc/motd"]?.type == .file
            let wh = names[deleted].map { $0.type == .char && $0.device == (0, 0) } ?? false
            let ociWh = names["etc/.wh.hosts"] != nil
            let extra = names.keys.filter {
                ![".", "", "etc", created, "etc/motd", deleted, "etc/.wh.hosts"].contains($0)
            }
            let ok = hasNew && hasMotd && (wh || ociWh) && extra.isEmpty
            let missing = [
                hasNew ? nil : created, hasMotd ? nil : "etc/motd", wh || ociWh ? nil : "the whiteout of \(deleted)",
            ].compactMap { $0 }
            var evidence = "\(commit): \(entries.count) entries"
            if !missing.isEmpty { evidence += "; missing: \(missing.joined(separator: ", "))" }
            if !extra.isEmpty {
                evidence += "; \(extra.count) more, e.g. \(extra.sorted().prefix(3).joined(separator: ", "))"
            }
            r.add(
                "lab9.commit", "the commit holds the three changes and nothing else", ok, evidence,
                fix: extra.isEmpty
                    ? "tar the writable layer, as root so the whiteout stays a device: tar -C \(upper) -cf \(commit) ."
                    : "a commit is the writable layer, not the merged view: tar -C \(upper) -cf \(commit) .")
        }
        return r.results
    }

    /// "lowerdir=a:b,upperdir=c" -> ["lowerdir": "a:b", ...]. Overlay escapes ',' in paths as
    /// "\,"; the lab's paths have none, and a path that had one would simply not match.
    static func options(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for option in text.split(separator: ",") {
            let kv = option.split(separator: "=", maxSplits: 1)
            if kv.count == 2 {
                let key = String(kv[0])
                // The new mount API lists each layer as its own "lowerdir+" option.
                if key == "lowerdir+" {
                    out["lowerdir"] = (out["lowerdir"].map { $0 + ":" } ?? "") + kv[1]
                } else {
                    out[key] = String(kv[1])
                }
            }
        }
        return out
    }

    /// "./etc/motd", "etc/motd/", "/etc/motd" -> "etc/motd".
    static func clean(_ name: String) -> String {
        var n = Substring(name)
        while n.hasPrefix("./") { n = n.dropFirst(2) }
        while n.hasPrefix("/") { n = n.dropFirst() }
        while n.hasSuffix("/") { n = n.dropLast() }
        return n == "." ? "" : String(n)
    }
}

/// The headers of a tar archive (ustar, GNU long names, pax paths), read without unpacking it.
enum TarHeaders {
    enum Kind: Equatable { case file, directory, symlink, hardlink, char, block, fifo, other }

    struct Entry {
        let name: String
        let type: Kind
        let device: (Int, Int)
    }

    static func read(_ path: String, maxEntries: Int = 100_000) -> Result<[Entry], ClabError> {
        let fd: Int32
        do { fd = try LabFile.openRegular(path).fd } catch { return .failure(error) }
        defer { close(fd) }
        var entries: [Entry] = []
        var longName: String?
        var block = [UInt8](repeating: 0, count: 512)
        func field(_ offset: Int, _ width: Int) -> String {
            let bytes = block[offset..<(offset + width)].prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        func octal(_ offset: Int, _ width: Int) -> Int {
            Int(field(offset, width).trimmed, radix: 8) ?? 0
        }
        while entries.count < maxEntries {
            let n = block.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 512) }
            guard n == 512 else {
                return n == 0 && !entries.isEmpty
                    ? .success(entries) : .failure(ClabError("\(path) is not a tar archive (it ends inside a header)"))
            }
            if block.allSatisfy({ $0 == 0 }) { return .success(entries) }
            guard field(257, 5) == "ustar" else {
                return .failure(ClabError("\(path) is not a tar archive (no ustar header)"))
            }
            let size = octal(124, 12)
            let flag = block[156]
            let padded = (size + 511) / 512 * 512
            if flag == UInt8(ascii: "L") || flag == UInt8(ascii: "x") {
                // The next entry's name: a GNU long name, or a pax header's path record.
                var data = [UInt8](repeating: 0, count: min(padded, 1 << 20))
                guard size <= data.count,
                    data.withUnsafeMutableBytes({ Glibc.read(fd, $0.baseAddress, padded) }) == padded
                else { return .failure(ClabError("\(path): a long name header is cut short")) }
                let text = String(
                    decoding: data[0..<size].prefix { $0 != 0 || flag == UInt8(ascii: "x") }, as: UTF8.self)
                if flag == UInt8(ascii: "L") {
                    longName = text
                } else if let record = text.split(separator: "\n").first(where: { $0.contains(" path=") }),
                    let eq = record.firstIndex(of: "=")
                {
                    longName = String(record[record.index(after: eq)...])
                }
                continue
            }
            let prefix = field(345, 155)
            let name = longName ?? (prefix.isEmpty ? field(0, 100) : prefix + "/" + field(0, 100))
            longName = nil
            let kind: Kind =
                switch flag {
                case UInt8(ascii: "0"), 0: .file
                case UInt8(ascii: "5"): .directory
                case UInt8(ascii: "2"): .symlink
                case UInt8(ascii: "1"): .hardlink
                case UInt8(ascii: "3"): .char
                case UInt8(ascii: "4"): .block
                case UInt8(ascii: "6"): .fifo
                default: .other
                }
            entries.append(Entry(name: name, type: kind, device: (octal(329, 8), octal(337, 8))))
            if padded > 0, lseek(fd, off_t(padded), SEEK_CUR) < 0 {
                return .failure(ClabError("\(path): \(errnoDescription(errno))"))
            }
        }
        return .failure(ClabError("\(path) has more than \(maxEntries) entries"))
    }
}
