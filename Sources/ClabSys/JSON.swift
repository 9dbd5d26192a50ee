/// Any JSON value: clab's one reader and writer of JSON it does not decode into a Codable type.
/// Objects keep their keys in order (the Engine API's responses follow the order Docker
/// documents, config.json starts with ociVersion, daemon.json round-trips as written); numbers
/// keep 64-bit integers exact (seccomp argument masks, memory limits). No Foundation: the
/// reader is small and strict, and says where a document is broken.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A whole number of 0 or more (the reader gives every such number this case).
    case unsigned(UInt64)
    /// A negative whole number.
    case signed(Int64)
    /// A number with a fraction or an exponent, or beyond 64 bits.
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.unsigned(let x), .unsigned(let y)): return x == y
        case (.signed(let x), .signed(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
        default: return false
        }
    }

    /// A whole number in the case the reader would give it.
    public static func int(_ n: Int) -> JSON { n >= 0 ? .unsigned(UInt64(n)) : .signed(Int64(n)) }
    public static func strings(_ list: [String]) -> JSON { .array(list.map(JSON.string)) }

    /// The value of `key` in an object; null when absent or when this is no object.
    public subscript(key: String) -> JSON {
        if case .object(let pairs) = self { return pairs.last { $0.0 == key }?.1 ?? .null }
        return .null
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var int: Int? {
        switch self {
        case .unsigned(let n): return n <= UInt64(Int.max) ? Int(n) : nil
        case .signed(let n): return Int(n)
        case .double(let n): return n == n.rounded() && abs(n) < 9e15 ? Int(n) : nil
        default: return nil
        }
    }
    public var array: [JSON]? { if case .array(let a) = self { return a } else { return nil } }
    public var object: [(String, JSON)]? { if case .object(let o) = self { return o } else { return nil } }
    /// An object's fields by key (the reader refuses duplicate keys; of a built one's, the last wins).
    public var fields: [String: JSON]? { object.map { Dictionary($0, uniquingKeysWith: { $1 }) } }

    /// null, false, 0, "", [] and {}: what the docker CLI sends for an option not given.
    public var isZero: Bool {
        switch self {
        case .null: return true
        case .bool(let b): return !b
        case .unsigned(let n): return n == 0
        case .signed(let n): return n == 0
        case .double(let n): return n == 0
        case .string(let s): return s.isEmpty
        case .array(let a): return a.isEmpty
        case .object(let o): return o.isEmpty
        }
    }
    /// A list of strings, or nil if it is anything else (null is an empty list).
    public var stringList: [String]? {
        if case .null = self { return [] }
        guard let items = array else { return nil }
        let strings = items.compactMap(\.string)
        return strings.count == items.count ? strings : nil
    }

    /// What kind of value this is, for a message ("is a string, expected a list").
    public var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .unsigned, .signed, .double: return "a number"
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "an object"
        }
    }

    /// A number as written (near enough), anything else by its kind.
    public var shown: String {
        switch self {
        case .unsigned(let n): return "\(n)"
        case .signed(let n): return "\(n)"
        case .double(let n): return "\(n)"
        default: return kind
        }
    }
}

// MARK: - writing

extension JSON {
    /// The document on one line, no spaces.
    public var text: String {
        var out = ""
        write(to: &out, indent: nil)
        return out
    }

    /// The document with one tab an level and a space after each colon, as `runc spec` writes config.json.
    public var indented: String {
        var out = ""
        write(to: &out, indent: 0)
        return out
    }

    private func write(to out: inout String, indent: Int?) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .unsigned(let n): out += String(n)
        case .signed(let n): out += String(n)
        case .double(let n):
            if n == n.rounded(), abs(n) < 9e15 { out += String(Int(n)) } else { out += String(n) }
        case .string(let s): out += JSONText.quoted(s)
        case .array(let items): Self.write(items.map { (nil, $0) }, between: "[", "]", to: &out, indent: indent)
        case .object(let pairs): Self.write(pairs.map { ($0.0, $0.1) }, between: "{", "}", to: &out, indent: indent)
        }
    }

    /// A list's items (no keys) or an object's members, one a line when indented.
    private static func write(
        _ members: [(String?, JSON)], between open: String, _ close: String, to out: inout String, indent: Int?
    ) {
        let newline = { (level: Int) in "\n" + String(repeating: "\t", count: level) }
        out += open
        for (i, (key, value)) in members.enumerated() {
            if i > 0 { out += "," }
            if let indent { out += newline(indent + 1) }
            if let key { out += JSONText.quoted(key) + (indent == nil ? ":" : ": ") }
            value.write(to: &out, indent: indent.map { $0 + 1 })
        }
        if let indent, !members.isEmpty { out += newline(indent) }
        out += close
    }
}

// MARK: - reading

extension JSON {
    /// Objects and lists nested deeper than this are refused: the reader recurses, and no
    /// document clab reads (an API body, config.json, a seccomp profile) comes near it.
    public static let maxDepth = 64

    /// Parses one document strictly: RFC 8259's grammar, valid UTF-8, no duplicate keys (one
    /// of two "action"s would otherwise win unseen), no lone \u surrogates, nothing after it.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> JSON {
        var reader = Reader(bytes: bytes)
        reader.skipSpace()
        let value = try reader.value()
        reader.skipSpace()
        guard reader.at == bytes.count else { throw reader.fail("text after the end of the JSON value") }
        return value
    }

    /// `parse`, its error a ClabError naming `source` (exit status 2).
    public static func parse(_ bytes: [UInt8], source: String) throws -> JSON {
        do throws(ParseError) {
            return try parse(bytes)
        } catch {
            throw ClabError("\(source): \(error)", exitCode: 2)
        }
    }

    /// Where a document is broken: "not valid JSON at line 12, column 5: expected '}'".
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let line: Int
        public let column: Int
        public let reason: String
        public var description: String { "not valid JSON at line \(line), column \(column): \(reason)" }
    }

    private struct Reader {
        let bytes: [UInt8]
        var at = 0
        var depth = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ reason: String) -> ParseError {
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
            return ParseError(line: line, column: column, reason: reason)
        }

        var current: UInt8? { at < bytes.count ? bytes[at] : nil }

        mutating func skipSpace() {
            while let c = current, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { at += 1 }
        }

        mutating func expect(_ char: Character) throws(ParseError) {
            guard let c = current, c == char.asciiValue else {
                throw fail("expected '\(char)'" + (current == nil ? " before the end of the file" : ""))
            }
            at += 1
        }

        mutating func value() throws(ParseError) -> JSON {
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

        mutating func nested() throws(ParseError) {
            depth += 1
            guard depth <= JSON.maxDepth else { throw fail("nested more than \(JSON.maxDepth) levels deep") }
        }

        /// The members of an object or the items of a list, up to `close`: `member` reads one.
        mutating func members(
            until close: Character, _ member: (inout Reader) throws(ParseError) -> Void
        ) throws(ParseError) {
            try nested()
            defer { depth -= 1 }
            at += 1
            skipSpace()
            if current == close.asciiValue {
                at += 1
                return
            }
            while true {
                skipSpace()
                try member(&self)
                skipSpace()
                if current == UInt8(ascii: ",") {
                    at += 1
                    continue
                }
                try expect(close)
                return
            }
        }

        mutating func object() throws(ParseError) -> JSON {
            var pairs: [(String, JSON)] = []
            var seen = Set<String>()
            try members(until: "}") { (r: inout Reader) throws(ParseError) in
                guard r.current == UInt8(ascii: "\"") else { throw r.fail("expected a key in double quotes") }
                let keyStart = r.at
                let key = try r.string()
                guard seen.insert(key).inserted else {
                    r.at = keyStart
                    throw r.fail("the key \"\(key)\" appears twice in one object")
                }
                r.skipSpace()
                try r.expect(":")
                r.skipSpace()
                pairs.append((key, try r.value()))
            }
            return .object(pairs)
        }

        mutating func array() throws(ParseError) -> JSON {
            var items: [JSON] = []
            try members(until: "]") { (r: inout Reader) throws(ParseError) in items.append(try r.value()) }
            return .array(items)
        }

        mutating func literal(_ word: String, _ result: JSON) throws(ParseError) -> JSON {
            let utf8 = Array(word.utf8)
            guard bytes.count - at >= utf8.count, Array(bytes[at..<at + utf8.count]) == utf8 else {
                throw fail("unexpected '\(Character(Unicode.Scalar(bytes[at])))'")
            }
            at += utf8.count
            return result
        }

        mutating func digits() -> Int {
            let from = at
            while let c = current, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { at += 1 }
            return at - from
        }

        mutating func number() throws(ParseError) -> JSON {
            let start = at
            if current == UInt8(ascii: "-") { at += 1 }
            let intStart = at
            guard digits() > 0 else { throw fail("a number needs digits") }
            if bytes[intStart] == UInt8(ascii: "0") && at - intStart > 1 { throw fail("a number may not start with 0") }
            var integral = true
            if current == UInt8(ascii: ".") {
                at += 1
                integral = false
                guard digits() > 0 else { throw fail("digits must follow the decimal point") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                at += 1
                integral = false
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { at += 1 }
                guard digits() > 0 else { throw fail("digits must follow the exponent") }
            }
            let text = String(decoding: bytes[start..<at], as: UTF8.self)
            if integral, let n = UInt64(text) { return .unsigned(n) }
            if integral, let n = Int64(text) { return .signed(n) }
            return .double(Double(text) ?? .infinity)
        }

        mutating func string() throws(ParseError) -> String {
            let start = at
            at += 1
            var out: [UInt8] = []
            while true {
                guard let c = current else { throw fail("a string is not closed before the end of the file") }
                at += 1
                switch c {
                case UInt8(ascii: "\""):
                    guard let s = String(validating: out, as: UTF8.self) else {
                        at = start
                        throw fail("a string that is not valid UTF-8")
                    }
                    return s
                case UInt8(ascii: "\\"):
                    guard let e = current else { throw fail("a string is not closed before the end of the file") }
                    at += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var code = try hex4()
                        if code >= 0xD800 && code < 0xDC00, current == UInt8(ascii: "\\") {
                            at += 1
                            try expect("u")
                            let low = try hex4()
                            // Checked before the arithmetic: `low - 0xDC00` would trap on a non-low one.
                            guard low >= 0xDC00 && low < 0xE000 else { throw fail("a broken \\u surrogate pair") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw fail("a lone \\u surrogate") }
                        UTF8.encode(scalar) { out.append($0) }
                    default: throw fail("unknown escape '\\\(Character(Unicode.Scalar(e)))'")
                    }
                default:
                    guard c >= 0x20 else { throw fail("a control character inside a string (write \\n, \\t)") }
                    out.append(c)
                }
            }
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            // Digits checked one by one: UInt32(_:radix:) alone would take a sign (\u+041).
            guard bytes.count - at >= 4, bytes[at..<at + 4].allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }),
                let code = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16)
            else { throw fail("\\u needs four hex digits") }
            at += 4
            return code
        }
    }
}
