import ClabSys
import Foundation
import Testing

@testable import ClabCgroups
@testable import ClabHost
@testable import ClabRuntime

/// ClabSys's Codable to and from `JSON`: the state file's one schema is its synthesized Codable.
@Suite("JSON coding: Codable through ClabSys's JSON")
struct JSONCodingTests {
    enum Color: String, Codable, Equatable { case red, green }

    struct Inner: Codable, Equatable {
        var name: String
        var tags: [String]
        var note: String?
    }

    struct Outer: Codable, Equatable {
        var id: String
        var inner: Inner
        var items: [Inner]
        var maybe: Int?
        var labels: [String: String]
        var byNumber: [Int: Bool]
        var holes: [Int?]
        var color: Color
        var ratio: Double
        var small: Float
        var limits: Limits
    }

    struct Limits: Codable, Equatable {
        var i64min = Int64.min
        var i64max = Int64.max
        var u64max = UInt64.max
        var imin = Int.min
        var i32min = Int32.min
        var u32max = UInt32.max
        var i8min = Int8.min
        var u8max = UInt8.max
        var i16 = Int16.min
        var u16 = UInt16.max
        var u = UInt.max
    }

    static let tricky = "say \"hi\"\n\t\\ / é ü 日本 🙂 \u{1} \u{7f}"

    static let sample = Outer(
        id: tricky, inner: Inner(name: "a", tags: ["x", "y"], note: nil),
        items: [Inner(name: "b", tags: [], note: "n"), Inner(name: tricky, tags: [tricky], note: nil)], maybe: nil,
        labels: ["zeta": "1", "alpha": "2", "mid": tricky], byNumber: [3: true], holes: [1, nil, 3], color: .green,
        ratio: -2.5e-8, small: 1.5, limits: Limits())

    func encoded<T: Encodable>(_ value: T) throws -> JSON { try JSONValueEncoder().encode(value) }

    /// Through the text, as the state file goes.
    func roundTrip<T: Codable>(_ value: T) throws -> T {
        let text = try encoded(value).text
        return try JSONValueDecoder().decode(T.self, from: JSON.parse(Array(text.utf8)))
    }

    @Test func nestedStructsRoundTripThroughTheText() throws {
        #expect(try roundTrip(Self.sample) == Self.sample)
        // Foundation reads what it writes to the same values (the text is plain JSON).
        let text = try encoded(Self.sample).text
        #expect(try JSONDecoder().decode(Outer.self, from: Data(text.utf8)) == Self.sample)
    }

    @Test func nilOptionalsAreOmittedAndKeysKeepTheirOrder() throws {
        let json = try encoded(Self.sample)
        #expect(
            json.object?.map(\.0) == [
                "id", "inner", "items", "labels", "byNumber", "holes", "color", "ratio", "small", "limits",
            ])
        #expect(json["inner"].object?.map(\.0) == ["name", "tags"])
        #expect(json["items"].array?.first?["note"] == .string("n"))
        // An optional inside a list is a null, not a hole.
        #expect(json["holes"] == .array([.unsigned(1), .null, .unsigned(3)]))
        #expect(json["color"] == .string("green"))
    }

    /// A [String: V] is written with its keys sorted: the file does not change from run to run.
    @Test func stringKeyedDictionariesAreSorted() throws {
        let json = try encoded(Self.sample)
        #expect(json["labels"].object?.map(\.0) == ["alpha", "mid", "zeta"])
        let many = Dictionary(uniqueKeysWithValues: (0..<40).map { ("k\($0)", $0) })
        let text = try encoded(many).text
        #expect(try encoded(many).object?.map(\.0) == many.keys.sorted())
        // Large objects are read through an index: every key still found.
        #expect(try JSONValueDecoder().decode([String: Int].self, from: JSON.parse(Array(text.utf8))) == many)
    }

    @Test func integersStayExactAtTheirLimits() throws {
        let json = try encoded(Limits())
        #expect(json["i64min"] == .signed(.min))
        #expect(json["i64max"] == .unsigned(UInt64(Int64.max)))
        #expect(json["u64max"] == .unsigned(.max))
        #expect(json["i8min"] == .signed(-128))
        #expect(json.text.contains(#""u64max":18446744073709551615,"#))
        #expect(json.text.contains(#""i64min":-9223372036854775808,"#))
        #expect(try roundTrip(Limits()) == Limits())
    }

    @Test func stringsKeepQuotesNewlinesAndUnicode() throws {
        let json = try encoded(Self.sample)
        #expect(json["id"] == .string(Self.tricky))
        #expect(!json.text.contains("\n"))
        #expect(try roundTrip([Self.tricky]) == [Self.tricky])
    }

    /// A hand-written Codable through nested containers and a super encoder.
    struct Custom: Codable, Equatable {
        var a: Int
        var list: [String]
        var base: String

        enum Keys: String, CodingKey { case box, list }
        enum BoxKeys: String, CodingKey { case a }

        init(a: Int, list: [String], base: String) {
            self.a = a
            self.list = list
            self.base = base
        }

        func encode(to encoder: any Encoder) throws {
            var keyed = encoder.container(keyedBy: Keys.self)
            var box = keyed.nestedContainer(keyedBy: BoxKeys.self, forKey: .box)
            try box.encode(a - 1, forKey: .a)
            try box.encode(a, forKey: .a)  // the last value of a key wins
            var unkeyed = keyed.nestedUnkeyedContainer(forKey: .list)
            for item in list {
                var pair = unkeyed.nestedUnkeyedContainer()
                try pair.encode(item)
            }
            var single = keyed.superEncoder().singleValueContainer()
            try single.encode(base)
        }

        init(from decoder: any Decoder) throws {
            let keyed = try decoder.container(keyedBy: Keys.self)
            a = try keyed.nestedContainer(keyedBy: BoxKeys.self, forKey: .box).decode(Int.self, forKey: .a)
            var unkeyed = try keyed.nestedUnkeyedContainer(forKey: .list)
            list = []
            while !unkeyed.isAtEnd {
                var pair = try unkeyed.nestedUnkeyedContainer()
                list.append(try pair.decode(String.self))
            }
            base = try keyed.superDecoder().singleValueContainer().decode(String.self)
        }
    }

    @Test func nestedContainersAndSuperEncoders() throws {
        let value = Custom(a: 7, list: ["p", "q"], base: "b")
        #expect(try encoded(value).text == #"{"box":{"a":7},"list":[["p"],["q"]],"super":"b"}"#)
        #expect(try roundTrip(value) == value)
    }

    func decodingError<T: Decodable>(_ type: T.Type, _ text: String) -> (path: String, message: String)? {
        do {
            _ = try JSONValueDecoder().decode(type, from: JSON.parse(Array(text.utf8)))
            return nil
        } catch let error as DecodingError {
            switch error {
            case .keyNotFound(let key, let context):
                return (
                    (context.codingPath + [key]).map(\.stringValue).joined(separator: "/"), context.debugDescription
                )
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                return (context.codingPath.map(\.stringValue).joined(separator: "/"), context.debugDescription)
            @unknown default: return nil
            }
        } catch {
            return nil
        }
    }

    @Test func decodingErrorsNameTheKeyPath() throws {
        let good = try encoded(Self.sample).text
        let wrongType = good.replacing(#""tags":["x","y"]"#, with: #""tags":["x",5]"#)
        let mismatch = decodingError(Outer.self, wrongType)
        #expect(mismatch?.path == "inner/tags/Index 1")
        #expect(mismatch?.message == "inner.tags[1]: expected a string, found a number")

        let missing = decodingError(Outer.self, good.replacing(#""name":"b","#, with: ""))
        #expect(missing?.path == "items/Index 0/name")
        #expect(missing?.message == "items[0].name: missing")

        let tooBig = decodingError(
            Limits.self, try encoded(Limits()).text.replacing(#""u8max":255"#, with: #""u8max":256"#))
        #expect(tooBig?.path == "u8max")
        #expect(tooBig?.message == "u8max: 256 does not fit in UInt8")

        #expect(decodingError(Limits.self, #"{"i64min":1.5}"#)?.message == "i64min: 1.5 does not fit in Int64")
        #expect(decodingError([Int].self, #"{"a":1}"#)?.message == "the document: expected a list, found an object")
        #expect(decodingError(Inner.self, "[]")?.message == "the document: expected an object, found a list")
    }

    @Test func numbersJSONCannotHoldAreRefused() {
        #expect(throws: EncodingError.self) { try encoded(["x": Double.nan]) }
        #expect(throws: EncodingError.self) { try encoded([Float.infinity]) }
    }

    // MARK: - the state file

    /// What the hand-written writer before JSONValueEncoder put in state.json, every field set
    /// (its key order, its escapes): a container started by that clab must still load.
    static let oldStateFile = """
        {"id":"0123456789ab","stage":12,"clabPid":4242,"created":1764748800,"clabStartTime":18446744073709551615,\
        "initPid":4243,"initStartTime":123456790,"command":"sh -c \\"echo hi\\"\\n\\u0001",\
        "cgroup":{"version":"v1","dirs":{"cpu":"/sys/fs/cgroup/cpu,cpuacct/a/pod/c1","memory":"/sys/fs/cgroup/memory/a/pod/c1"},\
        "parents":["/sys/fs/cgroup/memory/a/clab"],"ownsParents":false,"exclusive":true,"cgroupsPath":"pod/c1"},\
        "cgroupLevels":["/sys/fs/cgroup/memory/a/pod"],"volumes":["/srv/data","/srv/x y"],"layers":["ab12","cd34"],\
        "name":"web","address":"10.88.0.2","detached":{"image":"alpine:3.20","ports":["8080:80/tcp"]},"ociRuntime":true}

        """

    @Test func aStateFileOfTheOldWriterStillLoads() throws {
        let parent = NSTemporaryDirectory() + "clab-state-\(UUID().uuidString.prefix(8))"
        defer { try? FS.removeTree(parent) }
        try FS.makeDirectories(parent + "/0123456789ab")
        try FS.write(Self.oldStateFile, to: parent + "/0123456789ab/state.json")
        let state = try #require(ContainerState.load(parent + "/0123456789ab/state.json"))
        #expect(state.id == "0123456789ab")
        #expect(state.stage == 12)
        #expect(state.clabPid == 4242)
        #expect(state.created == 1_764_748_800)
        #expect(state.clabStartTime == UInt64.max)
        #expect(state.initPid == 4243)
        #expect(state.initStartTime == 123_456_790)
        #expect(state.command == "sh -c \"echo hi\"\n\u{1}")
        var placement = CgroupPlacement(
            version: .v1,
            dirs: ["cpu": "/sys/fs/cgroup/cpu,cpuacct/a/pod/c1", "memory": "/sys/fs/cgroup/memory/a/pod/c1"],
            parents: ["/sys/fs/cgroup/memory/a/clab"], note: nil)
        placement.ownsParents = false
        placement.exclusive = true
        placement.cgroupsPath = "pod/c1"
        #expect(state.cgroup == placement)
        #expect(state.cgroupLevels == ["/sys/fs/cgroup/memory/a/pod"])
        #expect(state.volumes == ["/srv/data", "/srv/x y"])
        #expect(state.layers == ["ab12", "cd34"])
        #expect(state.name == "web")
        #expect(state.address == "10.88.0.2")
        #expect(state.detached == DetachedFields(image: "alpine:3.20", ports: ["8080:80/tcp"]))
        #expect(state.ociRuntime == true)

        // Written again, it is the old file but for the order of its keys: the same keys, values.
        func unordered(_ json: JSON) -> JSON {
            switch json {
            case .object(let pairs): return .object(pairs.sorted { $0.0 < $1.0 }.map { ($0.0, unordered($0.1)) })
            case .array(let items): return .array(items.map(unordered))
            default: return json
            }
        }
        let written = try JSON.parse(Array(state.fileText().utf8))
        let old = try JSON.parse(Array(Self.oldStateFile.utf8))
        #expect(unordered(written) == unordered(old))
        #expect(try state.fileText().hasSuffix("}\n"))

        // The id must be the directory's name.
        try FS.makeDirectories(parent + "/other")
        try FS.write(Self.oldStateFile, to: parent + "/other/state.json")
        #expect(ContainerState.load(parent + "/other/state.json") == nil)
    }
}
