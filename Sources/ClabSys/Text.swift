/// The few string helpers clab needs, without Foundation (its full build brings ICU and
/// tens of megabytes, which every clab start would pay for).
extension StringProtocol {
    /// Without leading and trailing spaces, tabs and newlines.
    public var trimmed: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}

extension String {
    /// The same for a String: on its bytes when it is ASCII without a carriage return (then every
    /// byte is a Character, and "\r\n", one Character, cannot occur), else the generic version
    /// above, whose first use costs a runtime conformance lookup (kernel files are ASCII).
    public var trimmed: String {
        guard utf8.allSatisfy({ $0 < 0x80 && $0 != 0x0d }) else { return Substring(self).trimmed }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0a }
        guard let first = utf8.firstIndex(where: { !isSpace($0) }), let last = utf8.lastIndex(where: { !isSpace($0) })
        else {
            return ""
        }
        return String(self[first...last])
    }
}

public enum Path {
    /// "/a/b/c" -> "/a/b"; "/a" -> "/"; "a" -> ".".
    public static func dirname(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        let parent = p[..<slash]
        return parent.isEmpty ? "/" : String(parent)
    }

    public static func basename(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        return p.split(separator: "/").last.map(String.init) ?? String(p)
    }
}

/// "12.3" for (12.345, 1): fixed-point, for sizes and durations in messages.
public func fixed(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if digits == 0 { return String(Int(rounded)) }
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    let decimals = parts.count > 1 ? parts[1] : ""
    if decimals.count < digits { text += String(repeating: "0", count: digits - decimals.count) }
    return text
}

/// JSON string quoting without JSONEncoder (it escapes '/', and a Foundation encoder costs half a
/// millisecond on every container start). Controls — C0, DEL and C1 — are always escaped: valid
/// JSON either way, but never raw on a terminal that prints a state file or `clab state`.
public enum JSONText {
    public static func quoted(_ s: String) -> String {
        // Most strings (paths, ids, names) need no escape: a scan of their UTF-8 bytes says so,
        // and they are copied whole (5× faster than a scalar at a time; the state file and
        // clabd write many). Escaped are `"`, `\`, the C0 controls, DEL and the C1 controls
        // (U+0080-U+009F, which UTF-8 writes as 0xC2 0x80-0x9F).
        var previous: UInt8 = 0
        var plain = true
        for byte in s.utf8 {
            if byte < 0x20 || byte == 0x22 || byte == 0x5c || byte == 0x7f || (previous == 0xc2 && byte <= 0x9f) {
                plain = false
                break
            }
            previous = byte
        }
        if plain { return "\"" + s + "\"" }
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value):
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// "32.0 MiB"
public func humanBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : "\(fixed(value, 1)) \(units[unit])"
}

/// "512k", "64M", "1G", "1g", "1048576": bytes (binary multiples, as Docker and the kernel).
public func parseByteSize(_ text: String, option: String) throws -> Int64 {
    let units: [Character: Int64] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40]
    var digits = Substring(text)
    var multiplier: Int64 = 1
    if digits.hasSuffix("i") || digits.hasSuffix("iB") {  // "64Mi", "64MiB"
        digits = digits.dropLast(digits.hasSuffix("iB") ? 2 : 1)
    }
    if let last = digits.last?.lowercased().first, let unit = units[last] {
        multiplier = unit
        digits = digits.dropLast()
    } else if digits.hasSuffix("b") || digits.hasSuffix("B") {
        digits = digits.dropLast()
    }
    guard let value = Int64(digits), value > 0, value <= Int64.max / multiplier else {
        throw ClabError(
            "\(option) \(text) is not a size: use bytes or a number with k, M or G (for example 64M)", exitCode: 2)
    }
    return value * multiplier
}

/// A name clab keeps things under (a kept container, a volume, a network): at most `maxLength`
/// letters, digits, '_', '.' and '-', starting with a letter or digit (so never "." or "..",
/// never a path). ASCII letters only, lowercase unless `uppercase`.
public func isPlainName(_ name: String, uppercase: Bool, maxLength: Int = 64) -> Bool {
    guard let first = name.utf8.first, name.utf8.count <= maxLength else { return false }
    func letterOrDigit(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || (uppercase && c >= 0x41 && c <= 0x5A)
    }
    return letterOrDigit(first) && name.utf8.allSatisfy { letterOrDigit($0) || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D }
}
