import FoundationEssentials
import Glibc

/// Follows a tar stream's framing (512-byte headers, member data padded to 512 bytes, zero
/// blocks at the end) without interpreting the members, to tell an archive that only lacks its
/// end-of-archive blocks from a complete or a truncated one, and to see each member's type
/// before tar does (a device node is refused before it exists). Whatever it cannot follow (GNU
/// sparse extensions, a size it cannot parse), it leaves to tar; LayerStore.add checks the
/// extracted tree again.
struct TarFraming {
    private var header = [UInt8](repeating: 0, count: 512)
    private var filled = 0
    private var dataLeft = 0
    private var padLeft = 0
    /// A PAX extended header's or a GNU long name's data, collected for the next member.
    private var collected: [UInt8]?
    private var collecting: UInt8 = 0
    private var paxSize: Int?
    private var paxPath: String?
    private var longName: String?
    private(set) var ended = false
    private var lost = false
    /// The first device node that a layer may not hold, described ("dev/sda, a block device 8:0").
    private(set) var refusedDevice: String?
    /// Bytes after the end-of-archive block.
    private(set) var trailing = 0

    /// Zero bytes that make the stream a complete archive: the last member's padding and two
    /// end-of-archive blocks when the stream stopped right after a member's data; else 0.
    var missingTail: Int {
        guard !ended, !lost, filled == 0, dataLeft == 0 else { return 0 }
        return padLeft + 1024
    }

    mutating func consume(_ bytes: ArraySlice<UInt8>) {
        var i = bytes.startIndex
        while i < bytes.endIndex && !lost {
            if ended {
                trailing += bytes.endIndex - i
                return
            }
            if dataLeft > 0 || padLeft > 0 {
                let take = min(dataLeft + padLeft, bytes.endIndex - i)
                let fromData = min(take, dataLeft)
                if fromData > 0, collected != nil { collected?.append(contentsOf: bytes[i..<i + fromData]) }
                dataLeft -= fromData
                padLeft -= take - fromData
                i += take
                if dataLeft == 0, let data = collected {
                    finishCollected(data)
                }
                continue
            }
            let take = min(512 - filled, bytes.endIndex - i)
            header.replaceSubrange(filled..<filled + take, with: bytes[i..<i + take])
            filled += take
            i += take
            if filled == 512 {
                filled = 0
                nextHeader()
            }
        }
    }

    private mutating func finishCollected(_ data: [UInt8]) {
        if collecting == UInt8(ascii: "x") {
            paxSize = Self.paxRecord("size", data).flatMap { Int($0) }
            paxPath = Self.paxRecord("path", data)
        } else {
            longName = Self.string(data[...])
        }
        collected = nil
    }

    private mutating func nextHeader() {
        if header.allSatisfy({ $0 == 0 }) {
            ended = true
            return
        }
        guard let size = Self.number(header[124..<136]) else {
            lost = true
            return
        }
        var data = size
        let type = header[156]
        switch type {
        case UInt8(ascii: "1")...UInt8(ascii: "6"):
            if type == UInt8(ascii: "3") || type == UInt8(ascii: "4") {
                checkDevice(character: type == UInt8(ascii: "3"))
            }
            data = 0  // header-only types, as Go's archive/tar reads them
            endMember()
        case UInt8(ascii: "x"), UInt8(ascii: "L"):
            guard size <= 1 << 20 else {
                lost = true
                return
            }
            collected = []
            collecting = type
        case UInt8(ascii: "g"), UInt8(ascii: "K"):
            break
        case UInt8(ascii: "S") where header[482] != 0:
            lost = true  // old GNU sparse headers continue in extension blocks
            return
        default:
            data = paxSize ?? size
            endMember()
        }
        dataLeft = data
        padLeft = (512 - data % 512) % 512
        if data == 0, let empty = collected {
            finishCollected(empty)
        }
    }

    /// A member's own header was read: what PAX and GNU headers said applied to it alone.
    private mutating func endMember() {
        paxSize = nil
        paxPath = nil
        longName = nil
    }

    private mutating func checkDevice(character: Bool) {
        guard refusedDevice == nil else { return }
        let major = Self.number(header[329..<337]).flatMap { UInt32(exactly: $0) }
        let minor = Self.number(header[337..<345]).flatMap { UInt32(exactly: $0) }
        if let major, let minor, LayerStore.allowsDevice(character: character, major: major, minor: minor) { return }
        let numbers = major.flatMap { major in minor.map { "\(major):\($0)" } } ?? "with unreadable numbers"
        refusedDevice = "\(memberName), a \(character ? "character" : "block") device \(numbers)"
    }

    /// The current member's name: from a PAX record, a GNU long name, or ustar's prefix and name.
    private var memberName: String {
        if let paxPath { return paxPath }
        if let longName { return longName }
        let name = Self.string(header[0..<100])
        let prefix = header[257..<262].elementsEqual("ustar".utf8) ? Self.string(header[345..<500]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// Bytes up to the first NUL.
    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// A numeric field: octal digits, or base-256 (high bit set) for large values.
    static func number(_ field: ArraySlice<UInt8>) -> Int? {
        if field[field.startIndex] & 0x80 != 0 {
            guard field[field.startIndex] == 0x80 else { return nil }  // negative or too large
            var value = 0
            for byte in field.dropFirst() {
                guard value < Int.max >> 8 else { return nil }
                value = value << 8 | Int(byte)
            }
            return value
        }
        var value = 0
        var digits = 0
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") {
                if digits > 0 { break }
                continue
            }
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value < Int.max >> 3 else { return nil }
            value = value * 8 + Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return value
    }

    /// A record from PAX data: "<len> key=value\n", len counting the whole record.
    static func paxRecord(_ key: String, _ records: [UInt8]) -> String? {
        var found: String?
        var rest = records[...]
        while let space = rest.firstIndex(of: UInt8(ascii: " ")),
            let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)),
            length > space - rest.startIndex + 1, length <= rest.count
        {
            let record = String(decoding: rest[(space + 1)..<(rest.startIndex + length)], as: UTF8.self)
            if record.hasPrefix(key + "=") { found = String(record.dropFirst(key.count + 1).dropLast()) }
            rest = rest.dropFirst(length)
        }
        return found
    }
}
