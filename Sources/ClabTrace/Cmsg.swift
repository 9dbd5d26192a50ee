import CLibBPF

/// Control messages (msg_control) as strace's msghdr.c shows them.
extension Decoder {
    /// struct cmsghdr on x86_64: cmsg_len (8 bytes), cmsg_level, cmsg_type, then the data.
    static let cmsgHeader = 16

    /// `[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[3</etc/hostname>]}]`:
    /// each message until the bytes read end; `...` where msg_controllen says there was more than
    /// was read, `..., /* 0xADDR */` (as strace) where bytes are left that make no message.
    static func writeControl<S: TextSink>(
        _ c: ControlCapture, address: UInt64, fdPath: (Int64) -> String?, into out: inout S
    ) {
        let bytes = c.bytes
        guard bytes.count >= cmsgHeader else {
            writePointer(address, into: &out)  // strace too, when not even one header is there
            return
        }
        out.put(UInt8(ascii: "["))
        var offset = 0
        var left = bytes.count
        while left >= cmsgHeader {
            let length = u64(bytes, offset)
            let level = u32(bytes, offset + 8)
            let type = u32(bytes, offset + 12)
            if offset > 0 { out.put(", " as StaticString) }
            out.put("{cmsg_len=" as StaticString)
            out.decimal(length)
            out.put(", cmsg_level=" as StaticString)
            out.put(cmsgLevel(level))
            out.put(", cmsg_type=" as StaticString)
            let held = Int(min(length, UInt64(left)))
            let data = held > cmsgHeader ? Array(bytes[offset + cmsgHeader..<offset + held]) : []
            writeCmsgType(level: level, type: type, data: data, c, fdPath: fdPath, into: &out)
            out.put(UInt8(ascii: "}"))
            if held < cmsgHeader {
                left -= cmsgHeader
                break
            }
            let aligned = length > UInt64(Int.max) - 7 ? UInt64(Int.max) : (length + 7) & ~7
            if aligned >= UInt64(left) {
                left = 0
                break
            }
            offset += Int(aligned)
            left -= Int(aligned)
        }
        if left > 0 {
            out.put(", ... /* " as StaticString)
            writeHex(address &+ UInt64(bytes.count - left), into: &out)
            out.put(" */" as StaticString)
        } else if UInt64(bytes.count) < c.length {
            out.put(", ..." as StaticString)
        }
        out.put(UInt8(ascii: "]"))
    }

    /// strace's socketlayers: the name, or `0x.. /* SOL_??? */`.
    static func cmsgLevel(_ level: UInt32) -> String {
        if let hit = Flags.socketLevel.first(where: { $0.value == UInt64(level) }) { return hit.name }
        return Flags.hex(UInt64(level)) + " /* SOL_??? */"
    }

    /// SOL_SOCKET's control message types (strace's scmvals).
    static let scmTypes: Flags.Table =
        [(1, "SCM_RIGHTS"), (2, "SCM_CREDENTIALS"), (3, "SCM_SECURITY")] + Flags.timestamps

    /// The type, then `, cmsg_data=...` for the types decoded: SCM_RIGHTS' fds (named as -y
    /// names fds), SCM_CREDENTIALS' struct ucred, SCM_SECURITY's label, the receive timestamps
    /// (a timeval, a timespec, or SO_TIMESTAMPING's three timespecs; `???` when the message is
    /// too short for one, as strace). Others: the type only, a level other than SOL_SOCKET's in
    /// hex (its types are not decoded here).
    static func writeCmsgType<S: TextSink>(
        level: UInt32, type: UInt32, data: [UInt8], _ c: ControlCapture, fdPath: (Int64) -> String?,
        into out: inout S
    ) {
        guard level == 1 else {  // SOL_SOCKET
            out.put(Flags.hex(UInt64(type)))
            return
        }
        guard let name = scmTypes.first(where: { $0.value == UInt64(type) })?.name else {
            out.put(Flags.hex(UInt64(type)) + " /* SCM_??? */")
            return
        }
        out.put(name)
        switch type {
        case 1 where data.count >= 4:
            out.put(", cmsg_data=[" as StaticString)
            for i in 0..<data.count / 4 {
                if i > 0 { out.put(", " as StaticString) }
                let fd = Int64(i32(data, i * 4))
                out.decimal(fd)
                // A receiver's new fd: the name the session found; a sender's: its fd table.
                if let path = c.names[fd] ?? (c.nr == 47 ? nil : fdPath(fd)) {
                    out.put(UInt8(ascii: "<"))
                    out.put(path)
                    out.put(UInt8(ascii: ">"))
                }
            }
            out.put(UInt8(ascii: "]"))
        case 2 where data.count >= 12:
            out.put(", cmsg_data={pid=" as StaticString)
            out.decimal(Int64(i32(data, 0)))
            out.put(", uid=" as StaticString)
            out.decimal(UInt64(u32(data, 4)))
            out.put(", gid=" as StaticString)
            out.decimal(UInt64(u32(data, 8)))
            out.put(UInt8(ascii: "}"))
        case 3 where !data.isEmpty:
            out.put(", cmsg_data=" as StaticString)
            data.withUnsafeBytes { writeQuoted($0, truncated: false, limit: Int(CLAB_CMSG_MAX), into: &out) }
        case _ where !data.isEmpty:
            guard let stamp = timestamp(type: type, data) else { break }
            out.put(", cmsg_data=" as StaticString)
            out.put(stamp)
        default:
            break
        }
    }

    /// A receive timestamp's data: struct timeval for SO_TIMESTAMP (old and new are the same 16
    /// bytes on x86_64), struct timespec for SO_TIMESTAMPNS, three of them for SO_TIMESTAMPING
    /// (software, legacy, hardware); `???` when too short for it, as strace.
    static func timestamp(type: UInt32, _ data: [UInt8]) -> String? {
        switch type {
        case 29, 63: return data.count >= 16 ? timeval(data) : "???"
        case 35, 64: return data.count >= 16 ? timespec(data) : "???"
        case 37, 65:
            return data.count >= 48
                ? "[" + [0, 16, 32].map { timespec(data, at: $0) }.joined(separator: ", ") + "]" : "???"
        default: return nil
        }
    }
}
