/// A small strict JSON reader: unlike JSONDecoder it says where a file is broken ("line 12,
/// column 5"), keeps 64-bit integers exact, and refuses duplicate keys (which JSONDecoder
/// resolves silently, so one of two "action"s would win unseen).
struct JSONReader {
    private let bytes: [UInt8]
    private var at = 0
    private var depth = 0

    static func parse(_ bytes: [UInt8]) throws(ProfileIssue) -> JSONValue {
        var reader = JSONReader(bytes: bytes)
        reader.skipSpace()
        let value = try reader.value()
        reader.skipSpace()
        guard reader.at == bytes.count else { throw reader.fail("text after the end of the JSON value") }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func fail(_ what: String) -> ProfileIssue {
        var line = 1
        var column = 1
        for byte in bytes[..<min(at, bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return ProfileIssue("not valid JSON at line \(line), column \(column): \(what)")
    }

    private var current: UInt8? { at < bytes.count ? bytes[at] : nil }

    private mutating func skipSpace() {
        while let c = current, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { at += 1 }
    }

    private mutating func expect(_ char: Character) throws(ProfileIssue) {
        guard let c = current, c == char.asciiValue else {
            throw fail("expected '\(char)'" + (current == nil ? " before the end of the file" : ""))
        }
        at += 1
    }

    private mutating func value() throws(ProfileIssue) -> JSONValue {
        guard let c = current else { throw fail("a value is missing before the end of the file") }
        switch c {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected '\(Character(Unicode.Scalar(c)))'")
        }
    }

    private mutating func nested() throws(ProfileIssue) {
        depth += 1
        // Recursion bounds the stack: a profile is a few levels deep.
        guard depth <= 64 else { throw fail("nested more than 64 levels deep") }
    }

    private mutating func object() throws(ProfileIssue) -> JSONValue {
        try nested()
        defer { depth -= 1 }
        at += 1
        var fields: [String: JSONValue] = [:]
        skipSpace()
        if current == UInt8(ascii: "}") {
            at += 1
            return .object(fields)
        }
        while true {
            skipSpace()
            guard current == UInt8(ascii: "\"") else { throw fail("expected a key in double quotes") }
            let keyStart = at
            let key = try string()
            guard fields[key] == nil else {
                at = keyStart
                throw fail("the key \"\(key)\" appears twice in one object")
            }
            skipSpace()
            try expect(":")
            skipSpace()
            fields[key] = try value()
            skipSpace()
            if current == UInt8(ascii: ",") {
                at += 1
                continue
            }
            try expect("}")
            return .object(fields)
        }
    }

    private mutating func array() throws(ProfileIssue) -> JSONValue {
        try nested()
        defer { depth -= 1 }
        at += 1
        var items: [JSONValue] = []
        skipSpace()
        if current == UInt8(ascii: "]") {
            at += 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try value())
            skipSpace()
            if current == UInt8(ascii: ",") {
                at += 1
                continue
            }
            try expect("]")
            return .array(items)
        }
    }

    private mutating func literal(_ word: String, _ result: JSONValue) throws(ProfileIssue) -> JSONValue {
        let utf8 = Array(word.utf8)
        guard bytes.count - at >= utf8.count, Array(bytes[at..<at + utf8.count]) == utf8 else {
            throw fail("unexpected '\(Character(Unicode.Scalar(bytes[at])))'")
        }
        at += utf8.count
        return result
    }

    private mutating func number() throws(ProfileIssue) -> JSONValue {
        let start = at
        func digits(_ r: inout JSONReader) -> Int {
            let from = r.at
            while let c = r.current, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { r.at += 1 }
            return r.at - from
        }
        if current == UInt8(ascii: "-") { at += 1 }
        let intStart = at
        guard digits(&self) > 0 else { throw fail("a number needs digits") }
        if bytes[intStart] == UInt8(ascii: "0") && at - intStart > 1 { throw fail("a number may not start with 0") }
        var integral = true
        if current == UInt8(ascii: ".") {
            at += 1
            integral = false
            guard digits(&self) > 0 else { throw fail("digits must follow the decimal point") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            at += 1
            integral = false
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { at += 1 }
            guard digits(&self) > 0 else { throw fail("digits must follow the exponent") }
        }
        let text = String(decoding: bytes[start..<at], as: UTF8.self)
        if integral, let n = UInt64(text) { return .unsigned(n) }
        if integral, let n = Int64(text) { return .signed(n) }
        return .double(Double(text) ?? .infinity)
    }

    private mutating func string() throws(ProfileIssue) -> String {
        at += 1
        var scalars = String.UnicodeScalarView()
        var run: [UInt8] = []
        func flush(_ scalars: inout String.UnicodeScalarView, _ run: inout [UInt8]) {
            scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars)
            run.removeAll()
        }
        while true {
            guard let c = current else { throw fail("a string is not closed before the end of the file") }
            at += 1
            switch c {
            case UInt8(ascii: "\""):
                flush(&scalars, &run)
                return String(scalars)
            case UInt8(ascii: "\\"):
                flush(&scalars, &run)
                guard let e = current else { throw fail("a string is not closed before the end of the file") }
                at += 1
                switch e {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if code >= 0xD800 && code < 0xDC00, current == UInt8(ascii: "\\") {
                        at += 1
                        try expect("u")
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw fail("a broken \\u surrogate pair") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw fail("a broken \\u escape") }
                    scalars.append(scalar)
                default: throw fail("unknown escape '\\\(Character(Unicode.Scalar(e)))'")
                }
            default:
                guard c >= 0x20 else { throw fail("a control character inside a string (write \\n, \\t)") }
                run.append(c)
            }
        }
    }

    private mutating func hex4() throws(ProfileIssue) -> UInt32 {
        guard bytes.count - at >= 4, let code = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16)
        else { throw fail("\\u needs four hex digits") }
        at += 4
        return code
    }
}
