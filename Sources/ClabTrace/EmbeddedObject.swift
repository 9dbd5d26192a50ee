/// The BPF object the build compiled from bpf/clab_trace.bpf.c (Plugins/BPFCompiler embeds it
/// as base64 in a generated Swift file, so `swift build` in a fresh clone is all it takes and
/// the binary carries its own kernel program).
enum EmbeddedObject {
    /// The ELF bytes, decoded once. libbpf reads them while it opens and loads the object.
    static let bytes: [UInt8] = decodeBase64(bpfObject_clab_trace)

    static func decodeBase64(_ text: StaticString) -> [UInt8] {
        text.withUTF8Buffer { decodeBase64(Array($0)) }
    }

    static func decodeBase64(_ input: [UInt8]) -> [UInt8] {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var acc: UInt32 = 0
        var bits = 0
        for c in input {
            let v = table[Int(c)]
            if v == 0xFF { continue }  // padding, newlines
            acc = (acc << 6) | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }
}
