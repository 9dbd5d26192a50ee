import ClabSys
import Glibc

/// The spec on the wire, from clab to clab-init over the sync socket.
///
/// Every value carries its length, so no byte inside a string (an image's ENV entry, a path,
/// an argument) can end a field or start another one. (The format before this one was
/// NUL-separated `key=value` records: an ENV entry holding "A=1\0volume=rw=/x=/" added a
/// read-write bind of the host's `/`.) Binary, not JSON: init is Foundation-free and static.
///
///     header (12 bytes, one message)     body (bodyLength bytes, in messages of <= 32 KiB)
///     +---------+-----------+------------++-----+----------+-----------++-----+--------- - -
///     | "CLSP"  | version=1 | bodyLength || tag | length   | value     || tag | length   ...
///     | 4 bytes | u32       | u32        || u8  | u32      | length B  || u8  | u32
///     +---------+-----------+------------++-----+----------+-----------++-----+--------- - -
///
///     tag  field          value
///      1   id             string
///      2   stage          u32
///      3   hostname       string
///      4   imageRoot      string
///      5   bundleDir      string
///      6   command        list
///      7   env            list
///      8   idMapping      u32 inside, u32 host, u32 count
///      9   cgroupMounts   u32 n, then n x (str name, str dir)
///     10   overlay        list lowers, str upper, str work
///     11   volumes        u32 n, then n x (u8 readOnly 0|1, str target, str source)
///     12   workdir        string
///     13   network        u8: 0 own namespace, 1 the host's, 2 another container's (stage 11)
///     14   hardening      u32 capabilities low, u32 high, u8 flags (1 no_new_privs, 2 read-only
///                         root, 4 cgroup namespace, 8 time namespace), u32 x4 time offsets
///                         (monotonic low/high, boottime low/high, two's complement), list
///                         masked paths, list read-only paths, str filter name, u32 n + n x 8
///                         bytes seccomp filter (stage 12)
///     15   oci            an OCI bundle's mounts, rlimits, user, inheritable capabilities and
///                         read-only root (layout in OCISetup.swift)
///
///     string: the value's bytes (UTF-8, no NUL)     str: u32 length, then its bytes
///     list:   u32 n, then n x str                   integers little-endian
///
/// Decoding is strict, and any of these fails it with a message naming the field: a header
/// that is not "CLSP" version 1, an unknown tag, a field given twice, a value shorter or
/// longer than its length says, a string with a NUL (each becomes a C string in init) or
/// invalid UTF-8, a readOnly byte other than 0 or 1, bytes after the last field, or a
/// missing id, stage, hostname, imageRoot, bundleDir, command or env.
///
/// SOCK_SEQPACKET keeps message boundaries, and one message must fit the socket's send
/// buffer (~208 KiB by default): the body goes in chunks so a spec up to the kernel's exec
/// limit (`ContainerSpec.execLimit`, a few MiB) arrives whole.
extension ContainerSpec {
    public static let wireMagic: [UInt8] = Array("CLSP".utf8)
    public static let wireVersion: UInt32 = 1
    public static let wireHeaderSize = 12
    public static let wireChunkSize = 32 * 1024
    /// Far above anything `validate()` lets through (the exec limit is at most 6 MiB), so an
    /// announced length beyond it is garbage, not a spec to allocate for.
    public static let wireMaxBody = 64 << 20

    enum WireTag: UInt8, CaseIterable {
        case id = 1
        case stage, hostname, imageRoot, bundleDir, command, env, idMapping, cgroupMounts, overlay,
            volumes, workdir, network, hardening, oci

        /// The field's name in messages. Spelled out: `"\(tag)"` would go through the runtime's
        /// reflection (Mirror), a few hundred microseconds of every container's init.
        var name: String {
            switch self {
            case .id: "id"
            case .stage: "stage"
            case .hostname: "hostname"
            case .imageRoot: "imageRoot"
            case .bundleDir: "bundleDir"
            case .command: "command"
            case .env: "env"
            case .idMapping: "idMapping"
            case .cgroupMounts: "cgroupMounts"
            case .overlay: "overlay"
            case .volumes: "volumes"
            case .workdir: "workdir"
            case .network: "network"
            case .hardening: "hardening"
            case .oci: "oci"
            }
        }
    }

    /// Header and body in one array (tests, and the sender before it splits it).
    public var wire: [UInt8] {
        var body = WireWriter()
        body.field(.id) { $0.text(id) }
        body.field(.stage) { $0.u32(stageNumber) }
        body.field(.hostname) { $0.text(hostname) }
        body.field(.imageRoot) { $0.text(imageRoot) }
        body.field(.bundleDir) { $0.text(bundleDir) }
        body.field(.command) { $0.list(command) }
        body.field(.env) { $0.list(env) }
        if let m = idMapping {
            body.field(.idMapping) { w in
                for n in [m.inside, m.host, m.count] { w.u32(Int(n)) }
            }
        }
        if !cgroupMounts.isEmpty {
            body.field(.cgroupMounts) { w in
                w.u32(cgroupMounts.count)
                for (name, dir) in cgroupMounts.sorted(by: { $0.key < $1.key }) {
                    w.str(name)
                    w.str(dir)
                }
            }
        }
        if let o = overlay {
            body.field(.overlay) { w in
                w.list(o.lowers)
                w.str(o.upper)
                w.str(o.work)
            }
        }
        if !volumes.isEmpty {
            body.field(.volumes) { w in
                w.u32(volumes.count)
                for v in volumes {
                    w.bytes.append(v.readOnly ? 1 : 0)
                    w.str(v.target)
                    w.str(v.source)
                }
            }
        }
        if let workdir { body.field(.workdir) { $0.text(workdir) } }
        if network != .own { body.field(.network) { $0.bytes.append(network.rawValue) } }
        if let h = hardening {
            body.field(.hardening) { w in
                let caps = Capability.mask(h.capabilities)
                w.u32(Int(caps & 0xffff_ffff))
                w.u32(Int(caps >> 32))
                var flags: UInt8 = h.noNewPrivileges ? 1 : 0
                if h.readOnlyRoot { flags |= 2 }
                if h.cgroupNamespace { flags |= 4 }
                if h.timeOffsets != nil { flags |= 8 }
                w.bytes.append(flags)
                for n in [h.timeOffsets?.monotonic ?? 0, h.timeOffsets?.boottime ?? 0] {
                    let bits = UInt64(bitPattern: n)
                    w.u32(Int(bits & 0xffff_ffff))
                    w.u32(Int(bits >> 32))
                }
                w.list(h.maskedPaths)
                w.list(h.readonlyPaths)
                w.str(h.seccompName)
                w.u32(h.seccompFilter.count / 8)
                w.bytes += h.seccompFilter
            }
        }
        if let oci { body.field(.oci) { oci.encode(&$0) } }
        var header = WireWriter()
        header.bytes = Self.wireMagic
        header.u32(Int(Self.wireVersion))
        header.u32(body.bytes.count)
        return header.bytes + body.bytes
    }

    /// What the sender puts on the socket, one `send` each: the header alone, then the body in
    /// chunks. Validates first, so a spec that breaks a rule never leaves clab.
    public func wireMessages() throws -> [ArraySlice<UInt8>] {
        try validate()
        let bytes = wire
        var messages = [bytes[0..<Self.wireHeaderSize]]
        for start in stride(from: Self.wireHeaderSize, to: bytes.count, by: Self.wireChunkSize) {
            messages.append(bytes[start..<min(start + Self.wireChunkSize, bytes.count)])
        }
        return messages
    }

    /// The body length a header announces.
    public static func wireBodyLength(header: ArraySlice<UInt8>) throws(SpecWireError) -> Int {
        guard header.count == wireHeaderSize else {
            throw SpecWireError("the header is \(header.count) bytes, not \(wireHeaderSize)")
        }
        guard Array(header.prefix(4)) == wireMagic else { throw SpecWireError("it does not start with CLSP") }
        var reader = WireReader(header, field: "header")
        reader.at += 4
        let version = try reader.u32()
        guard version == wireVersion else {
            throw SpecWireError("format version \(version), this clab-init reads version \(wireVersion)")
        }
        let length = try reader.u32()
        guard length <= wireMaxBody else {
            throw SpecWireError("it announces \(length) bytes, more than any spec (\(wireMaxBody))")
        }
        return length
    }

    /// Header and body, as `wire` makes them.
    public init(wire: [UInt8]) throws(SpecWireError) {
        let header = wire.prefix(Self.wireHeaderSize)
        let length = try Self.wireBodyLength(header: header)
        guard wire.count - header.count == length else {
            throw SpecWireError(
                "the header announces \(length) bytes of fields, but \(wire.count - header.count) follow")
        }
        try self.init(wireBody: wire[Self.wireHeaderSize...])
    }

    public init(wireBody: ArraySlice<UInt8>) throws(SpecWireError) {
        var seen: UInt32 = 0  // a bit per tag (1-15): no Set, no generic metadata to build in init
        var id: String?
        var stage: Int?
        var hostname: String?
        var imageRoot: String?
        var bundleDir: String?
        var command: [String]?
        var env: [String]?
        var mapping: IDMapping?
        var cgroupMounts: [String: String] = [:]
        var overlay: OverlaySpec?
        var volumes: [VolumeSpec] = []
        var workdir: String?
        var network = NetworkNamespace.own
        var hardening: Hardening?
        var oci: OCISetup?
        var body = WireReader(wireBody, field: "fields")
        while !body.atEnd {
            let rawTag = try body.u8()
            guard let tag = WireTag(rawValue: rawTag) else {
                throw SpecWireError("unknown field tag \(rawTag) at byte \(body.at - 1 - wireBody.startIndex)")
            }
            guard seen & (1 << rawTag) == 0 else { throw SpecWireError("field '\(tag.name)' is given twice") }
            seen |= 1 << rawTag
            body.field = tag.name
            let length = try body.u32()
            var r = WireReader(try body.take(length), field: tag.name)
            switch tag {
            case .id: id = try r.rest()
            case .stage:
                let n = try r.u32()
                guard Stage.range.contains(n) else {
                    throw SpecWireError("field 'stage' is \(n), not 1-\(Stage.all.count)")
                }
                stage = n
            case .hostname: hostname = try r.rest()
            case .imageRoot: imageRoot = try r.rest()
            case .bundleDir: bundleDir = try r.rest()
            case .command: command = try r.list()
            case .env: env = try r.list()
            case .idMapping:
                let inside = try r.u32()
                let host = try r.u32()
                let count = try r.u32()
                mapping = IDMapping(inside: UInt32(inside), host: UInt32(host), count: UInt32(count))
            case .cgroupMounts:
                for _ in 0..<(try r.count()) {
                    let name = try r.str()
                    guard cgroupMounts[name] == nil else {
                        throw SpecWireError("field 'cgroupMounts' names '\(name)' twice")
                    }
                    cgroupMounts[name] = try r.str()
                }
            case .overlay:
                overlay = OverlaySpec(lowers: try r.list(), upper: try r.str(), work: try r.str())
            case .volumes:
                for _ in 0..<(try r.count()) {
                    let flag = try r.u8()
                    guard flag <= 1 else { throw SpecWireError("field 'volumes' has readOnly byte \(flag)") }
                    let target = try r.str()
                    volumes.append(VolumeSpec(source: try r.str(), target: target, readOnly: flag == 1))
                }
            case .workdir: workdir = try r.rest()
            case .network:
                let raw = try r.u8()
                guard let mode = NetworkNamespace(rawValue: raw) else {
                    throw SpecWireError("field 'network' is \(raw), not 0-2")
                }
                network = mode
            case .hardening:
                hardening = try Self.decodeHardening(&r)
            case .oci:
                oci = try OCISetup.decode(&r, volumes: .max)
            }
            guard r.atEnd else {
                throw SpecWireError("field '\(tag.name)' has \(r.remaining) bytes after its value")
            }
        }
        if let oci, oci.mounts.contains(where: { $0.volume >= volumes.count }) {
            throw SpecWireError("field 'oci' has a bind mount naming a volume the spec lacks")
        }
        let missing = [
            ("id", id == nil), ("stage", stage == nil), ("hostname", hostname == nil),
            ("imageRoot", imageRoot == nil), ("bundleDir", bundleDir == nil), ("command", command == nil),
            ("env", env == nil),
        ].filter(\.1).map(\.0)
        guard missing.isEmpty, let id, let stage, let hostname, let imageRoot, let bundleDir, let command, let env
        else {
            throw SpecWireError("field '\(missing.first ?? "?")' is missing")
        }
        self.init(
            id: id, stageNumber: stage, hostname: hostname, imageRoot: imageRoot, bundleDir: bundleDir,
            command: command, env: env, idMapping: mapping)
        self.cgroupMounts = cgroupMounts
        self.overlay = overlay
        self.volumes = volumes
        self.workdir = workdir
        self.network = network
        self.hardening = hardening
        self.oci = oci
    }

    private static func decodeHardening(_ r: inout WireReader) throws(SpecWireError) -> Hardening {
        var h = Hardening()
        let low = UInt64(try r.u32())
        let caps = low | UInt64(try r.u32()) << 32
        guard caps & ~Capability.mask(Set(Capability.allCases)) == 0 else {
            throw SpecWireError("field 'hardening' keeps capability bits clab does not know")
        }
        h.capabilities = Capability.set(fromMask: caps)
        let flags = try r.u8()
        guard flags & ~15 == 0 else { throw SpecWireError("field 'hardening' has flags \(flags)") }
        h.noNewPrivileges = flags & 1 != 0
        h.readOnlyRoot = flags & 2 != 0
        h.cgroupNamespace = flags & 4 != 0
        var offsets: [Int64] = []
        for _ in 0..<2 {
            let low = UInt64(try r.u32())
            offsets.append(Int64(bitPattern: low | UInt64(try r.u32()) << 32))
        }
        h.timeOffsets = flags & 8 != 0 ? TimeOffsets(monotonic: offsets[0], boottime: offsets[1]) : nil
        h.maskedPaths = try r.list()
        h.readonlyPaths = try r.list()
        h.seccompName = try r.str()
        let count = try r.u32()
        guard count <= Hardening.maxFilterLength else {
            throw SpecWireError("field 'hardening' has a seccomp filter of \(count) instructions")
        }
        h.seccompFilter = Array(try r.take(count * 8))
        return h
    }

    /// Reads one spec from a SOCK_SEQPACKET socket: the header message, then chunks until the
    /// announced length is in. nil: the socket closed before a header came (clab exited).
    public static func receive(from fd: Int32) throws(SpecWireError) -> ContainerSpec? {
        var header = [UInt8](repeating: 0, count: wireHeaderSize)
        let n = header.withUnsafeMutableBytes { receiveMessage(fd, $0) }
        if n == 0 { return nil }
        guard n > 0 else { throw SpecWireError("recv: \(errnoDescription(errno))") }
        guard n == wireHeaderSize else { throw SpecWireError("the header is \(n) bytes, not \(wireHeaderSize)") }
        let length = try wireBodyLength(header: header[...])
        var body = [UInt8](repeating: 0, count: length)
        var filled = 0
        while filled < length {
            let got = body.withUnsafeMutableBytes {
                receiveMessage(fd, UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
            }
            guard got >= 0 else { throw SpecWireError("recv: \(errnoDescription(errno))") }
            guard got > 0 else { throw SpecWireError("it ends after \(filled) of \(length) bytes") }
            guard got <= length - filled else {
                throw SpecWireError("it is longer than the \(length) bytes its header announces")
            }
            filled += got
        }
        return try ContainerSpec(wireBody: body[...])
    }

    /// One message into `buffer`. MSG_TRUNC: the result is the message's real length, so a
    /// message larger than the space left is seen, not silently cut.
    private static func receiveMessage(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
        var n: Int
        repeat {
            n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_TRUNC))
        } while n < 0 && errno == EINTR
        return n
    }
}

/// A spec that cannot be decoded: clab and clab-init disagree (different builds), or the bytes
/// were damaged. Said in one line by init, as "init: the container spec from clab is ...".
public struct SpecWireError: Error, CustomStringConvertible, Sendable, Equatable {
    public let detail: String

    public init(_ detail: String) { self.detail = detail }

    public var description: String {
        "the container spec from clab is malformed: \(detail) (clab and clab-init must come from the same build)"
    }
}

struct WireWriter {
    var bytes: [UInt8] = []

    /// Lengths and counts are 32-bit: `validate()` keeps every string and list far below 4 GiB.
    mutating func u32(_ value: Int) {
        let v = UInt32(clamping: value)
        bytes += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
    }

    /// A whole field's value: its length is the field's.
    mutating func text(_ s: String) { bytes += s.utf8 }

    mutating func str(_ s: String) {
        u32(s.utf8.count)
        bytes += s.utf8
    }

    mutating func list(_ strings: [String]) {
        u32(strings.count)
        for s in strings { str(s) }
    }

    /// tag, a length filled in afterwards, and the value `body` writes.
    mutating func field(_ tag: ContainerSpec.WireTag, _ body: (inout WireWriter) -> Void) {
        bytes.append(tag.rawValue)
        let lengthAt = bytes.count
        u32(0)
        body(&self)
        let v = UInt32(clamping: bytes.count - lengthAt - 4)
        bytes[lengthAt] = UInt8(v & 0xff)
        bytes[lengthAt + 1] = UInt8(v >> 8 & 0xff)
        bytes[lengthAt + 2] = UInt8(v >> 16 & 0xff)
        bytes[lengthAt + 3] = UInt8(v >> 24)
    }
}

struct WireReader {
    let bytes: ArraySlice<UInt8>
    var at: Int
    /// Named in errors.
    var field: String

    init(_ bytes: ArraySlice<UInt8>, field: String) {
        self.bytes = bytes
        self.at = bytes.startIndex
        self.field = field
    }

    var atEnd: Bool { at == bytes.endIndex }
    var remaining: Int { bytes.endIndex - at }

    mutating func take(_ n: Int) throws(SpecWireError) -> ArraySlice<UInt8> {
        guard n <= remaining else {
            throw SpecWireError("field '\(field)' is truncated (\(n) bytes wanted, \(remaining) left)")
        }
        defer { at += n }
        return bytes[at..<at + n]
    }

    mutating func u8() throws(SpecWireError) -> UInt8 { try take(1).first ?? 0 }

    mutating func u32() throws(SpecWireError) -> Int {
        let b = try take(4)
        let s = b.startIndex
        return Int(b[s]) | Int(b[s + 1]) << 8 | Int(b[s + 2]) << 16 | Int(b[s + 3]) << 24
    }

    /// A count of items that each take at least 4 bytes: a count the rest cannot hold is
    /// refused before any loop runs it.
    mutating func count() throws(SpecWireError) -> Int {
        let n = try u32()
        guard n <= remaining / 4 else {
            throw SpecWireError("field '\(field)' is truncated (\(n) items announced, \(remaining) bytes left)")
        }
        return n
    }

    mutating func text(_ b: ArraySlice<UInt8>) throws(SpecWireError) -> String {
        guard !b.contains(0) else { throw SpecWireError("field '\(field)' contains a NUL byte") }
        guard let s = String(validating: b, as: UTF8.self) else {
            throw SpecWireError("field '\(field)' is not valid UTF-8")
        }
        return s
    }

    mutating func str() throws(SpecWireError) -> String { try text(try take(try u32())) }

    mutating func rest() throws(SpecWireError) -> String { try text(try take(remaining)) }

    mutating func list() throws(SpecWireError) -> [String] {
        var out: [String] = []
        for _ in 0..<(try count()) { out.append(try str()) }
        return out
    }
}
