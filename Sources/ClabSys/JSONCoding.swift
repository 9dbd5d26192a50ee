/// Codable to and from `JSON`, without Foundation: a type's synthesized Codable is its schema,
/// written and read through one value. The state file is written once per container start, in
/// a fresh process: there a first encode here cost 0.11-0.18 ms against JSONEncoder's 0.44 ms
/// (swiftc -O; at steady state the two are alike, 13-18 µs), and ClabSys stays Foundation-free.
///
/// Encoding: nil optionals are omitted (synthesized `encodeIfPresent`); integers stay exact
/// 64-bit numbers; a struct's keys keep the order it encodes them in; a dictionary's keys are
/// sorted (its own order changes from run to run; an Int key sorts as its text, "10" < "9").
/// A key encoded twice in one container keeps its last value.
/// Doubles must be finite (JSON has no NaN). A value that encodes nothing is `{}`.
public struct JSONValueEncoder: Sendable {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> JSON {
        try Part.of(value, at: []).json
    }
}

/// `JSON` to a Decodable. Errors are `DecodingError`s whose coding path, and message, name
/// where in the document the value is: "cgroup.dirs.memory: expected a string, found a number".
/// Whole numbers decode to any integer type they fit exactly; any number decodes to a Double.
public struct JSONValueDecoder: Sendable {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from json: JSON) throws -> T {
        try T(from: ValueDecoder(value: json, parentPath: [], key: nil))
    }
}

/// A key of an array item or a dictionary entry, for coding paths.
struct JSONCodingKey: CodingKey {
    let stringValue: String
    let intValue: Int?

    init(stringValue: String) {
        self.stringValue = stringValue
        intValue = nil
    }

    init(intValue: Int) {
        stringValue = "Index \(intValue)"
        self.intValue = intValue
    }

    static let superKey = JSONCodingKey(stringValue: "super")

    /// A coding path as people read it: `cgroup.dirs.memory`, `detached.ports[1]`.
    static func text(_ path: [any CodingKey]) -> String {
        guard !path.isEmpty else { return "the document" }
        var out = ""
        for key in path {
            if let index = key.intValue, key is JSONCodingKey {
                out += "[\(index)]"
            } else {
                out += (out.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return out
    }
}

// MARK: - encoding

/// The standard library's scalars as a JSON value; nil for any other type. Told apart by their
/// metatype: a cast to a protocol would scan the binary's conformance records on its first use
/// for each type, hundreds of microseconds in a process that encodes once.
private func scalar<T>(_ value: T, at path: @autoclosure () -> [any CodingKey]) throws -> JSON? {
    let type = T.self
    if type == String.self { return (value as? String).map(JSON.string) }
    if type == Bool.self { return (value as? Bool).map(JSON.bool) }
    if type == Int.self { return (value as? Int).map(JSON.int) }
    if type == Int64.self { return (value as? Int64).map { $0 >= 0 ? .unsigned(UInt64($0)) : .signed($0) } }
    if type == Int32.self { return (value as? Int32).map { .int(Int($0)) } }
    if type == Int16.self { return (value as? Int16).map { .int(Int($0)) } }
    if type == Int8.self { return (value as? Int8).map { .int(Int($0)) } }
    if type == UInt64.self { return (value as? UInt64).map(JSON.unsigned) }
    if type == UInt.self { return (value as? UInt).map { .unsigned(UInt64($0)) } }
    if type == UInt32.self { return (value as? UInt32).map { .unsigned(UInt64($0)) } }
    if type == UInt16.self { return (value as? UInt16).map { .unsigned(UInt64($0)) } }
    if type == UInt8.self { return (value as? UInt8).map { .unsigned(UInt64($0)) } }
    guard type == Double.self || type == Float.self else { return nil }
    let number = (value as? Double) ?? (value as? Float).map(Double.init) ?? .nan
    guard number.isFinite else {
        throw EncodingError.invalidValue(
            value,
            .init(
                codingPath: path(),
                debugDescription: "\(JSONCodingKey.text(path())): \(value) is not a number JSON can hold"))
    }
    return .double(number)
}

/// One encoded value: finished, or built by containers that may still write to it.
private enum Part {
    case done(JSON)
    case building(Building)

    static func of<T: Encodable>(_ value: T, at path: @autoclosure () -> [any CodingKey]) throws -> Part {
        if let json = try scalar(value, at: path()) { return .done(json) }
        let building = Building()
        try value.encode(to: ValueEncoder(target: building, codingPath: path()))
        return .building(building)
    }

    var json: JSON {
        switch self {
        case .done(let json): return json
        case .building(let building): return building.json
        }
    }
}

/// A value under construction: a reference, so that a nested container's writes land in it.
private final class Building {
    enum Kind { case none, single, object, array }
    private(set) var kind = Kind.none
    var single = Part.done(.null)
    var members: [(key: String, part: Part)] = []
    var items: [Part] = []
    /// An object whose members are written sorted by key.
    var sortsKeys = false
    /// Member positions by key, once an object is too large to search its keys in order.
    private var positions: [String: Int] = [:]

    /// Asking for another kind of container than before starts the value over.
    func become(_ kind: Kind) {
        guard kind != self.kind else { return }
        self.kind = kind
        single = .done(.null)
        members = []
        items = []
        sortsKeys = false
        positions = [:]
    }

    func set(_ key: String, _ part: Part) {
        if let i = position(key) {
            members[i].part = part
        } else {
            if !positions.isEmpty { positions[key] = members.count }
            members.append((key, part))
        }
    }

    private func position(_ key: String) -> Int? {
        guard members.count >= 16 else { return members.firstIndex { $0.key == key } }
        if positions.isEmpty { for (i, member) in members.enumerated() { positions[member.key] = i } }
        return positions[key]
    }

    /// A new value at `key` (or appended, for an array), for a nested container or encoder.
    func child(_ key: String?) -> Building {
        let child = Building()
        if let key { set(key, .building(child)) } else { items.append(.building(child)) }
        return child
    }

    var json: JSON {
        switch kind {
        case .none: return .object([])
        case .single: return single.json
        case .object:
            let ordered = sortsKeys ? members.sorted { $0.key < $1.key } : members
            return .object(ordered.map { ($0.key, $0.part.json) })
        case .array: return .array(items.map(\.json))
        }
    }
}

private struct ValueEncoder: Encoder {
    let target: Building
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        target.become(.object)
        // A key type that takes any string is a dictionary's (or similar): its order is the
        // hash table's, different from run to run, so it is sorted. A struct's CodingKeys
        // takes only its own names, and keeps the order the struct encodes them in.
        if Key(stringValue: "\u{0}") != nil { target.sortsKeys = true }
        return KeyedEncodingContainer(KeyedEncoder<Key>(target: target, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        target.become(.array)
        return UnkeyedEncoder(target: target, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        target.become(.single)
        return SingleEncoder(target: target, codingPath: codingPath)
    }
}

/// Each container has one generic `encode`, which witnesses the per-type requirements too: the
/// scalars are told apart once, in `scalar`.
private struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let target: Building
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { target.set(key.stringValue, .done(.null)) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        target.set(key.stringValue, try Part.of(value, at: codingPath + [key]))
    }

    mutating func nestedContainer<N: CodingKey>(keyedBy keyType: N.Type, forKey key: Key) -> KeyedEncodingContainer<N> {
        ValueEncoder(target: target.child(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: N.self)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        ValueEncoder(target: target.child(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        ValueEncoder(target: target.child("super"), codingPath: codingPath + [JSONCodingKey.superKey])
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        ValueEncoder(target: target.child(key.stringValue), codingPath: codingPath + [key])
    }
}

private struct UnkeyedEncoder: UnkeyedEncodingContainer {
    let target: Building
    let codingPath: [any CodingKey]
    var count: Int { target.items.count }
    private var nextKey: JSONCodingKey { JSONCodingKey(intValue: count) }

    mutating func encodeNil() throws { target.items.append(.done(.null)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        target.items.append(try Part.of(value, at: codingPath + [nextKey]))
    }

    mutating func nestedContainer<N: CodingKey>(keyedBy keyType: N.Type) -> KeyedEncodingContainer<N> {
        let path = codingPath + [nextKey]
        return ValueEncoder(target: target.child(nil), codingPath: path).container(keyedBy: N.self)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = codingPath + [nextKey]
        return ValueEncoder(target: target.child(nil), codingPath: path).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let path = codingPath + [nextKey]
        return ValueEncoder(target: target.child(nil), codingPath: path)
    }
}

private struct SingleEncoder: SingleValueEncodingContainer {
    let target: Building
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { target.single = .done(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws { target.single = try Part.of(value, at: codingPath) }
}

// MARK: - decoding

/// A value and where it is; also its own single-value container, where the scalars are read.
private struct ValueDecoder: Decoder, SingleValueDecodingContainer {
    let value: JSON
    /// The path is put together only for an error or a nested value: most values are neither.
    let parentPath: [any CodingKey]
    let key: (any CodingKey)?
    var codingPath: [any CodingKey] { key.map { parentPath + [$0] } ?? parentPath }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func mismatch<T>(_ type: T.Type, _ expected: String) -> DecodingError {
        .typeMismatch(
            type,
            .init(
                codingPath: codingPath,
                debugDescription: "\(JSONCodingKey.text(codingPath)): expected \(expected), found \(value.kind)"))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let pairs) = value else { throw mismatch([String: JSON].self, "an object") }
        return KeyedDecodingContainer(KeyedDecoder<Key>(pairs: pairs, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw mismatch([JSON].self, "a list") }
        return UnkeyedDecoder(items: items, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool { value == .null }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch(type, "a boolean") }
        return b
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let s) = value else { throw mismatch(type, "a string") }
        return s
    }

    func decode(_ type: Double.Type) throws -> Double {
        switch value {
        case .unsigned(let n): return Double(n)
        case .signed(let n): return Double(n)
        case .double(let n): return n
        default: throw mismatch(type, "a number")
        }
    }

    func decode(_ type: Float.Type) throws -> Float {
        let n = try decode(Double.self)
        guard abs(n) <= Double(Float.greatestFiniteMagnitude) else { throw outOfRange(type) }
        return Float(n)
    }

    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: self) }

    /// A whole number that fits `N` exactly (2.0 does; 2.5 and 300 as a UInt8 do not).
    private func integer<N: FixedWidthInteger>(_ type: N.Type) throws -> N {
        let exact: N?
        switch value {
        case .unsigned(let n): exact = N(exactly: n)
        case .signed(let n): exact = N(exactly: n)
        case .double(let n): exact = N(exactly: n)
        default: throw mismatch(type, "a whole number")
        }
        guard let exact else { throw outOfRange(type) }
        return exact
    }

    private func outOfRange<T>(_ type: T.Type) -> DecodingError {
        .dataCorrupted(
            .init(
                codingPath: codingPath,
                debugDescription: "\(JSONCodingKey.text(codingPath)): \(value.shown) does not fit in \(type)"))
    }
}

private struct KeyedDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let pairs: [(String, JSON)]
    let codingPath: [any CodingKey]
    /// Values by key for a large object (a dictionary); a struct's few keys are searched in order.
    private let index: [String: JSON]?

    init(pairs: [(String, JSON)], codingPath: [any CodingKey]) {
        self.pairs = pairs
        self.codingPath = codingPath
        index = pairs.count > 16 ? Dictionary(pairs, uniquingKeysWith: { $1 }) : nil
    }

    var allKeys: [Key] { pairs.compactMap { Key(stringValue: $0.0) } }

    private func find(_ name: String) -> JSON? {
        if let index { return index[name] }
        return pairs.last { $0.0 == name }?.1
    }

    func contains(_ key: Key) -> Bool { find(key.stringValue) != nil }

    private func child(_ key: Key) throws -> ValueDecoder {
        guard let value = find(key.stringValue) else {
            throw DecodingError.keyNotFound(
                key,
                .init(codingPath: codingPath, debugDescription: "\(JSONCodingKey.text(codingPath + [key])): missing"))
        }
        return ValueDecoder(value: value, parentPath: codingPath, key: key)
    }

    func decodeNil(forKey key: Key) throws -> Bool { try child(key).decodeNil() }

    /// One generic `decode` witnesses the per-type requirements: the scalars are read by
    /// `ValueDecoder`'s own, through the type's init(from:).
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try T(from: child(key)) }

    func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
        try child(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try child(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        ValueDecoder(value: find("super") ?? .null, parentPath: codingPath, key: JSONCodingKey.superKey)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        ValueDecoder(value: find(key.stringValue) ?? .null, parentPath: codingPath, key: key)
    }
}

private struct UnkeyedDecoder: UnkeyedDecodingContainer {
    let items: [JSON]
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(items: [JSON], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    /// The next item, not yet taken.
    private func peek<T>(_ type: T.Type) throws -> ValueDecoder {
        let key = JSONCodingKey(intValue: currentIndex)
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                type,
                .init(
                    codingPath: codingPath + [key],
                    debugDescription: "\(JSONCodingKey.text(codingPath + [key])): the list has only \(items.count)"))
        }
        return ValueDecoder(value: items[currentIndex], parentPath: codingPath, key: key)
    }

    /// Takes the next item only once it decoded, as Foundation's decoder does: a failed item
    /// can be decoded again as something else.
    private mutating func take<T>(_ decode: (ValueDecoder) throws -> T) throws -> T {
        let result = try decode(try peek(T.self))
        currentIndex += 1
        return result
    }

    mutating func decodeNil() throws -> Bool {
        guard try peek(Any?.self).decodeNil() else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try take { try T(from: $0) } }

    mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> {
        try take { try $0.container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try take { try $0.unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder { try take { $0 } }
}
