import ClabSpec
import ClabSys
import Foundation
import Glibc
import Testing

@testable import ClabCLI
@testable import ClabHost
@testable import ClabImages
@testable import ClabRuntime

/// A spec with every field set, its strings as awkward as the format must carry.
func hostileSpec() -> ContainerSpec {
    var spec = ContainerSpec(
        id: "abc123", stageNumber: 10, hostname: "h", imageRoot: "/img", bundleDir: "/run/c/abc123",
        command: ["sh", "-c", "echo a=b\nvolume=rw=/x=/", "", "grüße ☃ \u{1}\u{7f}"],
        env: ["A=1", "PS1=x = y", "B=line1\nline2=volume=rw=/hostroot=/", "C=", "É=é"], idMapping: .defaultRange)
    spec.cgroupMounts = ["memory": "/sys/fs/cgroup/memory/clab/abc123", "": "/sys/fs/cgroup/clab/abc123"]
    spec.overlay = OverlaySpec(lowers: ["/l/2", "/l/1"], upper: "/rw/upper", work: "/rw/work")
    spec.volumes = [
        VolumeSpec(source: "/v/data/_data", target: "/d=x", readOnly: false),
        VolumeSpec(source: "/srv/site", target: "/www", readOnly: true),
    ]
    spec.workdir = "/w=1\n"
    return spec
}

/// A wire whose header announces exactly the body that follows.
func wireWith(body: [UInt8]) -> [UInt8] {
    var header = ContainerSpec.wireMagic + [1, 0, 0, 0]
    let n = UInt32(body.count)
    header += [UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)]
    return header + body
}

func field(_ tag: UInt8, _ value: [UInt8]) -> [UInt8] {
    let n = UInt32(value.count)
    return [tag, UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)] + value
}

@Suite("the spec clab sends to init")
struct SpecWireTests {
    @Test func hostileStringsRoundTripExactly() throws {
        let spec = hostileSpec()
        #expect(throws: Never.self) { try spec.validate() }
        let decoded = try ContainerSpec(wire: spec.wire)
        #expect(decoded == spec)
        // Byte for byte, not just equal after Unicode normalization.
        #expect(decoded.command.map { Array($0.utf8) } == spec.command.map { Array($0.utf8) })
        #expect(decoded.env.map { Array($0.utf8) } == spec.env.map { Array($0.utf8) })
        #expect(decoded.volumes.count == 2)

        var minimal = ContainerSpec(
            id: "x", stageNumber: 1, hostname: "x", imageRoot: "/i", bundleDir: "/b", command: [], env: [],
            idMapping: nil)
        #expect(try ContainerSpec(wire: minimal.wire) == minimal)
        minimal.workdir = ""
        #expect(try ContainerSpec(wire: minimal.wire) == minimal)
    }

    @Test func messagesAreAHeaderThenChunksThatAddUpToTheWire() throws {
        var spec = hostileSpec()
        spec.command = ["sh"] + Array(repeating: String(repeating: "x", count: 100_000), count: 5)
        let messages = try spec.wireMessages()
        #expect(messages[0].count == ContainerSpec.wireHeaderSize)
        #expect(messages.dropFirst().allSatisfy { $0.count <= ContainerSpec.wireChunkSize })
        #expect(messages.count > 10)
        #expect(Array(messages.joined()) == spec.wire)
    }

    /// The injection of issue 8: a NUL in an ENV entry, CMD argument or WORKDIR. Under the old
    /// format ("env=A=1\0volume=rw=/hostroot=/\0", split on NUL) the second half was a record
    /// of its own: a read-write bind of the host's `/` at /hostroot. Now it never leaves clab,
    /// and were it encoded anyway, init would refuse the field instead of splitting it.
    @Test func aNULIsRefusedBeforeEncodingAndByTheDecoder() throws {
        let injected = "A=1\u{0}volume=rw=/hostroot=/"
        var spec = hostileSpec()
        spec.env.append(injected)
        let error = #expect(throws: ClabError.self) { try spec.wireMessages() }
        #expect(error?.message == "environment entry 6 contains a NUL byte")
        let decodeError = #expect(throws: SpecWireError.self) { try ContainerSpec(wire: spec.wire) }
        #expect(decodeError?.detail == "field 'env' contains a NUL byte")

        for change in [
            { (s: inout ContainerSpec) in s.command[1] = "-c\u{0}x" },
            { (s: inout ContainerSpec) in s.workdir = "/w\u{0}volume=rw=/hostroot=/" },
            { (s: inout ContainerSpec) in s.hostname = "h\u{0}" },
            { (s: inout ContainerSpec) in s.volumes[0].source = "/v\u{0}" },
            { (s: inout ContainerSpec) in s.volumes[0].target = "/d\u{0}" },
            { (s: inout ContainerSpec) in s.overlay?.lowers.append("/l/\u{0}") },
            { (s: inout ContainerSpec) in s.cgroupMounts["cpu"] = "/sys/fs/cgroup/\u{0}" },
        ] {
            var bad = hostileSpec()
            change(&bad)
            let error = #expect(throws: ClabError.self) { try bad.validate() }
            #expect(error?.message.hasSuffix("contains a NUL byte") == true, "\(error?.message ?? "")")
            #expect(throws: SpecWireError.self) { try ContainerSpec(wire: bad.wire) }
        }
    }

    @Test func otherRulesOfTheFinishedSpec() {
        func refused(_ change: (inout ContainerSpec) -> Void) -> String {
            var spec = hostileSpec()
            change(&spec)
            do {
                try spec.validate()
                return "(accepted)"
            } catch {
                return "\(error)"
            }
        }
        #expect(
            refused { $0.env.append("NOEQUALS") }
                == "environment entry 6 has no '=': environment entries are NAME=VALUE")
        #expect(
            refused { $0.env.append("=x") }
                == "environment entry 6 has an empty name: environment entries are NAME=VALUE")
        #expect(
            refused { $0.volumes[0].target = "//" }
                == "the target of volume 1 // is the container's root: a volume cannot replace it")
        #expect(refused { $0.volumes[0].target = "/a/.." }.contains("is the container's root"))
        #expect(refused { $0.volumes[0].target = "" }.contains("must be an absolute path"))
        #expect(refused { $0.volumes[0].target = "data" }.contains("must be an absolute path"))
        let comma = refused { $0.overlay?.upper = "/a,lowerdir=/" }
        #expect(comma.contains("which overlayfs reads as separators"))
    }

    @Test func theExecLimitIsTheKernelsAndSaidInOneLine() throws {
        let env = ["PATH=/bin"]
        let limit = ContainerSpec.execLimit - Int(PATH_MAX)
        // Arguments of 100000 bytes (each below MAX_ARG_STRLEN) up to exactly the limit.
        let fixed = ContainerSpec.execBytes(command: ["sh"], env: env)
        let count = (limit - fixed) / (100_001 + 8) - 1
        var command = ["sh"] + Array(repeating: String(repeating: "a", count: 100_000), count: count)
        // The rest (100000-200000 bytes) in two arguments, each below MAX_ARG_STRLEN.
        let rest = limit - ContainerSpec.execBytes(command: command + ["", ""], env: env)
        command += [String(repeating: "b", count: rest / 2), String(repeating: "b", count: rest - rest / 2)]
        #expect(ContainerSpec.execBytes(command: command, env: env) == limit)
        #expect(throws: Never.self) { try ContainerSpec.checkExec(command: command, env: env) }
        command[command.count - 1] += "b"
        let error = #expect(throws: ClabError.self) { try ContainerSpec.checkExec(command: command, env: env) }
        #expect(
            error?.message
                == "the command and environment are \(limit + 1) bytes; the limit is \(limit) (ARG_MAX \(ContainerSpec.execLimit), less \(PATH_MAX) for the program's path)"
        )
        let one = ContainerSpec.maxStringBytes
        let long = #expect(throws: ClabError.self) {
            try ContainerSpec.checkExec(command: ["sh", String(repeating: "c", count: one)], env: env)
        }
        #expect(
            long?.message
                == "argument 2 of the command is \(one + 1) bytes; the limit for one is \(one) (MAX_ARG_STRLEN)")
    }

    @Test func decodingIsStrict() throws {
        let good = hostileSpec().wire
        let body = Array(good.dropFirst(ContainerSpec.wireHeaderSize))
        func refusal(_ wire: [UInt8]) -> String? {
            do {
                _ = try ContainerSpec(wire: wire)
                return nil
            } catch {
                return error.detail
            }
        }
        // Every truncation with the header as sent fails. With a header that agrees with the
        // cut, only a cut between whole fields decodes (to a smaller spec, field for field).
        for n in 0..<good.count {
            #expect(refusal(Array(good.prefix(n))) != nil, "cut at \(n)")
        }
        for n in 0..<body.count {
            let cut = wireWith(body: Array(body.prefix(n)))
            if let smaller = try? ContainerSpec(wire: cut) {
                #expect(smaller.wire == cut && smaller != hostileSpec(), "body cut at \(n)")
            }
        }
        let id = field(1, Array("x".utf8))
        #expect(
            refusal(good + [0]) == "the header announces \(body.count) bytes of fields, but \(body.count + 1) follow")
        #expect(refusal(wireWith(body: body + [0])) == "unknown field tag 0 at byte \(body.count)")
        #expect(refusal(wireWith(body: body + field(99, []))) == "unknown field tag 99 at byte \(body.count)")
        #expect(refusal(wireWith(body: body + id)) == "field 'id' is given twice")
        #expect(refusal(wireWith(body: id + [2, 4, 0, 0])) == "field 'stage' is truncated (4 bytes wanted, 3 left)")
        #expect(
            refusal(wireWith(body: id + [2, 4, 0, 0, 0, 1])) == "field 'stage' is truncated (4 bytes wanted, 1 left)")
        #expect(refusal([UInt8]("XLSP".utf8) + good.dropFirst(4)) == "it does not start with CLSP")
        #expect(
            refusal(Array(good.prefix(4)) + [2, 0, 0, 0] + good.dropFirst(8))
                == "format version 2, this clab-init reads version 1")
        #expect(refusal(ContainerSpec.wireMagic + [1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]) != nil)
        // A stage field longer than its u32; a string with invalid UTF-8; a readOnly byte of 2;
        // a count the field cannot hold.
        #expect(refusal(wireWith(body: field(2, [10, 0, 0, 0, 0]))) == "field 'stage' has 1 bytes after its value")
        #expect(refusal(wireWith(body: field(2, [0, 0, 0, 0]))) == "field 'stage' is 0, not 1-\(Stage.all.count)")
        #expect(refusal(wireWith(body: field(3, [0xff, 0xfe]))) == "field 'hostname' is not valid UTF-8")
        #expect(
            refusal(wireWith(body: field(11, [1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0])))
                == "field 'volumes' has readOnly byte 2")
        #expect(
            refusal(wireWith(body: field(6, [0xff, 0xff, 0xff, 0xff])))
                == "field 'command' is truncated (4294967295 items announced, 0 bytes left)")
        // Every field required, and the message names the first one missing.
        #expect(refusal(wireWith(body: [])) == "field 'id' is missing")
        #expect(refusal(wireWith(body: id)) == "field 'stage' is missing")
        // Garbage never crashes the decoder.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var bytes = body
            for _ in 0..<4 {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = refusal(wireWith(body: bytes))
            _ = refusal(
                wireWith(
                    body: (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            )
        }
        // The message init prints.
        #expect(
            "\(SpecWireError("x"))"
                == "the container spec from clab is malformed: x (clab and clab-init must come from the same build)")
    }

    @Test(arguments: [
        ("vol://", "-v vol://: a volume cannot replace the container's root"),
        ("vol:/", "-v vol:/: a volume cannot replace the container's root"),
        ("vol:/.", "-v vol:/.: a volume cannot replace the container's root"),
        ("vol:/a/..:ro", "-v vol:/a/..:ro: a volume cannot replace the container's root"),
        ("vol:", "-v vol:: give SOURCE:TARGET[:ro]"),
        ("vol:d", "-v vol:d: the target d must be an absolute path inside the container"),
        ("vol:/d\u{0}x", "-v: the target contains a NUL byte"),
        ("/srv\u{0}/x:/d", "-v: the source contains a NUL byte"),
    ])
    func volumeTargets(text: String, message: String) {
        let error = #expect(throws: ClabError.self) { try VolumeRequest.parse(text) }
        #expect(error?.message.hasPrefix(message) == true, "\(error?.message ?? "")")
    }

    @Test func volumeTargetsAreCleaned() throws {
        #expect(try VolumeRequest.parse("vol://data//x/").target == "/data/x")
        #expect(
            try VolumeRequest.parse("/srv:/a/../b/.:ro")
                == VolumeRequest(source: .bind("/srv"), target: "/b", readOnly: true))
    }

    @Test(arguments: [
        (
            "FROM busybox\nENV A=1\u{0}volume=rw=/hostroot=/\n",
            "Clabfile line 2 contains a NUL byte: build files are text"
        ),
        ("FROM busybox\nENV =1\n", "Clabfile line 2: ENV has an empty name"),
        (
            "FROM busybox\nCMD [\"sh\", \"-c\", \"x\\u0000volume=rw=/hostroot=/\"]\n",
            "Clabfile line 2: CMD argument 3 contains a NUL byte"
        ),
    ])
    func buildFilesRefuseWhatExecveCannotTake(text: String, message: String) {
        let error = #expect(throws: ClabError.self) { try ImageBuilder.parse(text, file: "Clabfile") }
        #expect(error?.message.hasPrefix(message) == true, "\(error?.message ?? "")")
    }

    @Test func imageConfigsAreChecked() {
        func refused(env: [String] = ["A=1"], cmd: [String]? = nil, workdir: String? = nil) -> String {
            let config = ImageConfig(layers: [], env: env, cmd: cmd, workdir: workdir, history: [], created: "")
            do {
                try config.validate("image web:1")
                return "(accepted)"
            } catch {
                return "\(error)"
            }
        }
        #expect(refused() == "(accepted)")
        #expect(
            refused(env: ["A=1", "B=2", "C=3\u{0}volume=rw=/x=/"]) == "image web:1: ENV entry 3 contains a NUL byte")
        #expect(refused(env: ["A"]) == "image web:1: ENV entry 1 has no '=': environment entries are NAME=VALUE")
        #expect(refused(cmd: ["sh", "\u{0}"]) == "image web:1: CMD argument 2 contains a NUL byte")
        #expect(refused(workdir: "/w\u{0}") == "image web:1: WORKDIR contains a NUL byte")
    }

    @Test func nonUTF8ArgumentsAreNamed() {
        let args: [[UInt8]] = [Array("clab".utf8), Array("step".utf8), [0x63, 0x61, 0x66, 0xe9, 0x0a]]
        let pointers = args.map { bytes in
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (i, b) in bytes.enumerated() { p[i] = CChar(bitPattern: b) }
            p[bytes.count] = 0
            return Optional(p)
        }
        defer { for p in pointers { p?.deallocate() } }
        var argv = pointers + [nil]
        let message = argv.withUnsafeMutableBufferPointer { buffer in
            CLI.invalidUTF8Argument(Int32(args.count), buffer.baseAddress!)
        }
        #expect(
            message
                == "argument 2 (caf\\xe9\\x0a) is not valid UTF-8: clab passes text only (put other bytes in a file, e.g. on a volume)"
        )
        var valid = Array(pointers.prefix(2)) + [nil]
        #expect(valid.withUnsafeMutableBufferPointer { CLI.invalidUTF8Argument(2, $0.baseAddress!) } == nil)
    }
}

/// The same, end to end: the clab binary, real images and containers.
@Suite("spec injection and limits, end to end", needsRoot)
struct SpecInjectionTests {
    /// An image config with a NUL, stored as an import or build before this fix could have
    /// stored it. With the old NUL-separated records each of these became a read-write bind
    /// of the host's `/` at /hostroot, and `cat` printed the host file (the test then fails on
    /// both expectations below).
    @Test(arguments: ["env", "cmd", "workdir"])
    func aHostileImageConfigIsRefusedAndTheHostStaysOut(field: String) throws {
        try TestEnv.ensureImage()
        let marker = TestEnv.root + "/host-marker-\(UUID().uuidString.prefix(8))"
        try "HOST FILE\n".write(toFile: marker, atomically: false, encoding: .utf8)
        defer { unlink(marker) }
        let store = ImageStore(layout: TestEnv.layout)
        let record = "\u{0}volume=rw=/hostroot=/"
        let config = ImageConfig(
            layers: try store.layers(ImageStore.baseName),
            env: ["PATH=\(ContainerSpec.defaultPath)"] + (field == "env" ? ["A=1" + record] : []),
            cmd: field == "cmd" ? ["cat", "/hostroot" + marker + record] : ["cat", "/hostroot" + marker],
            workdir: field == "workdir" ? "/w" + record : nil, history: [], created: "")
        let name = "evil-\(field)-\(UUID().uuidString.prefix(6).lowercased())"
        try store.tag(try store.save(config), as: ImageRef(name: name, tag: "latest"))
        defer { _ = try? clab("image", "rm", name) }
        let out = try clab("step", "10", "--quiet", "--image", name)
        #expect(!out.stdout.contains("HOST FILE"), "the host's / was mounted: \(out.stdout)")
        let what = ["env": "ENV entry 2", "cmd": "CMD argument 2", "workdir": "WORKDIR"][field] ?? ""
        #expect(out.stderr == "clab: image \(name):latest: \(what) contains a NUL byte\n")
        #expect(out.status == 2)
    }

    @Test func aBuildFileWithANULBuildsNothing() throws {
        try TestEnv.ensureImage()
        let dir = TestEnv.root + "/ctx-nul-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "FROM busybox\nENV A=1\u{0}volume=rw=/hostroot=/\nCMD [\"true\"]\n".write(
            toFile: dir + "/Clabfile", atomically: false, encoding: .utf8)
        let name = "nul-\(UUID().uuidString.prefix(6).lowercased())"
        let out = try clab("image", "build", "-t", name, dir)
        #expect(out.status == 2)
        #expect(out.stderr.hasSuffix("Clabfile line 2 contains a NUL byte: build files are text\n"), "\(out.stderr)")
        #expect(throws: ClabError.self) { try ImageStore(layout: TestEnv.layout).resolve(name) }
    }

    @Test func anOCIImportWithANULImportsNothing() throws {
        try TestEnv.ensureImage()
        let work = TestEnv.root + "/oci-nul-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let layout = work + "/layout"
        #expect(try clab("image", "export", "busybox", layout).status == 0)
        // The config with a NUL in Env ("\u0000" in its JSON), and the digests that name it.
        func json(_ path: String) throws -> [String: Any] {
            try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }
        func blob(_ digest: Any?) -> String { layout + "/blobs/sha256/" + ((digest as? String) ?? "").dropFirst(7) }
        func store(_ object: Any) throws -> (String, Int) {
            let bytes = try JSONSerialization.data(withJSONObject: object)
            let digest = "sha256:" + SHA256.hex(Array(bytes))
            try bytes.write(to: URL(fileURLWithPath: blob(digest)))
            return (digest, bytes.count)
        }
        var index = try json(layout + "/index.json")
        var entries = try #require(index["manifests"] as? [[String: Any]])
        var manifest = try json(blob(entries[0]["digest"]))
        var descriptor = try #require(manifest["config"] as? [String: Any])
        var config = try json(blob(descriptor["digest"]))
        var exec = (config["config"] as? [String: Any]) ?? [:]
        exec["Env"] = ["PATH=/bin", "A=1\u{0}volume=rw=/hostroot=/"]
        config["config"] = exec
        (descriptor["digest"], descriptor["size"]) = try store(config)
        manifest["config"] = descriptor
        (entries[0]["digest"], entries[0]["size"]) = try store(manifest)
        index["manifests"] = entries
        try JSONSerialization.data(withJSONObject: index).write(to: URL(fileURLWithPath: layout + "/index.json"))

        let root = work + "/state"
        let out = try runProcess(
            [TestEnv.clab, "image", "import", layout, "--tag", "evil:1"], env: ["CLAB_ROOT": root])
        #expect(out.status == 2)
        #expect(out.stderr.hasSuffix("clab: image evil:1: ENV entry 2 contains a NUL byte\n"), "\(out.stderr)")
        #expect(!out.stderr.contains("importing"), "refused before the layers: \(out.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: root + "/layers/sha256")) ?? []).isEmpty)
        #expect(ImageStore(layout: StateLayout.resolve(rootOption: root)).refs().isEmpty)
    }

    /// 1 MiB of arguments: five times what one message on the sync socket could hold (the old
    /// single send failed with "init went away ... Message too long").
    @Test func argumentsOfAMegabyteReachTheCommand() throws {
        try TestEnv.ensureImage()
        let chunk = String(repeating: "x", count: 64 * 1024)
        let script = "n=0; for a; do n=$((n + ${#a})); done; echo $# $n"
        let out = try runProcess(
            [TestEnv.clab, "step", "7", "--quiet", "--", "/bin/sh", "-c", script, "sh"]
                + Array(repeating: chunk, count: 16))
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "16 \(16 * 64 * 1024)\n")
    }

    /// Exactly at clab's limit, the kernel still executes the command: the limit is not above
    /// the kernel's, and init reads a spec of that size.
    @Test func aCommandExactlyAtTheLimitRuns() throws {
        try TestEnv.ensureImage()
        let stage = try Stage.numbered(7)
        let env = ContainerSpec.baseEnv(stage: stage, hostname: "h")
        let limit = ContainerSpec.execLimit - Int(PATH_MAX)
        var command = ["/bin/true"]
        while true {
            let room = limit - ContainerSpec.execBytes(command: command + [""], env: env)
            command.append(String(repeating: "a", count: min(room, 100_000)))
            if room <= 100_000 { break }
        }
        #expect(ContainerSpec.execBytes(command: command, env: env) == limit)
        let prepared = try TestEnv.runtime.prepare(RunRequest(stage: stage, command: command, hostname: "h")) { _ in }
        #expect(prepared.spec.env == env)
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        let result = try TestEnv.runtime.run(prepared, stdio: (devNull, devNull, 2))
        #expect(result.status.code == 0)
    }

    /// Over the kernel's limit: refused in one line before the state directory exists.
    @Test func argumentsOverTheExecLimitAreRefusedFirst() throws {
        let root = TestEnv.root + "/argmax-\(UUID().uuidString.prefix(8))"
        let runtime = Runtime(layout: StateLayout.resolve(rootOption: root), initPath: TestEnv.runtime.initPath)
        let count = ContainerSpec.execLimit / 100_000 + 1
        let request = RunRequest(
            stage: try Stage.numbered(7),
            command: ["true"] + Array(repeating: String(repeating: "y", count: 100_000), count: count))
        let error = #expect(throws: ClabError.self) { try runtime.prepare(request, log: { _ in }) }
        #expect(error?.message.hasPrefix("the command and environment are ") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("(ARG_MAX \(ContainerSpec.execLimit)") == true, "\(error?.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: root))
    }

    /// The same limit met by an image's ENV (the arguments alone cannot pass it: clab itself
    /// had to be executed with them): refused before a container directory exists.
    @Test func anImageEnvironmentOverTheLimitIsRefused() throws {
        let root = TestEnv.root + "/argmax-image-\(UUID().uuidString.prefix(8))"
        try TestEnv.ensureImage(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = ImageStore(layout: StateLayout.resolve(rootOption: root))
        let big = (0..<(ContainerSpec.execLimit / 100_000 + 1)).map {
            "V\($0)=" + String(repeating: "z", count: 100_000)
        }
        let config = ImageConfig(
            layers: try store.layers(ImageStore.baseName), env: big, cmd: ["true"], workdir: nil, history: [],
            created: "")
        try store.tag(try store.save(config), as: ImageRef(name: "bigenv", tag: "latest"))
        let out = try runProcess([TestEnv.clab, "step", "9", "--quiet", "--image", "bigenv"], env: ["CLAB_ROOT": root])
        #expect(out.status == 2)
        #expect(out.stderr.hasPrefix("clab: the command and environment are "), "\(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) == [])
    }

    @Test(arguments: [
        (
            ["step", "10", "-v", "vol://", "--", "true"],
            "clab: -v vol://: a volume cannot replace the container's root"
        ),
        (["step", "-1"], "clab: no stage -1: stages go from 1 to \(Stage.all.count)"),
        (["step", "--quiet", "-3", "--", "true"], "clab: no stage -3: stages go from 1 to \(Stage.all.count)"),
        (["check", "-1"], "clab: no stage -1: stages go from 1 to \(Stage.all.count)"),
        (["lesson", "-2"], "clab: no stage -2: stages go from 1 to \(Stage.all.count)"),
        (["trace", "--step", "-1", "--", "true"], "clab: no stage -1: stages go from 1 to \(Stage.all.count)"),
        (["step", "1", "--root", "", "--", "true"], "clab: --root is empty: give the state directory"),
    ])
    func badInputIsOneLineAndLeavesNothing(args: [String], message: String) throws {
        // In an empty directory of its own: `--root ""` used to fill the current directory.
        let cwd = TestEnv.root + "/cwd-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: cwd) }
        let root = cwd + "/state"
        let out = try runProcess([TestEnv.clab] + args, env: ["CLAB_ROOT": root], cwd: cwd)
        #expect(out.status != 0)
        #expect(out.stderr.hasPrefix(message), "\(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: cwd) == [])
    }

    /// Swift would have turned the byte 0xe9 into U+FFFD and run the command with it.
    @Test func aNonUTF8ArgumentIsRefused() throws {
        let out = try runProcess([
            "/bin/sh", "-c", "exec \"$0\" step 4 --quiet -- echo \"$(printf 'caf\\351')\"", TestEnv.clab,
        ])
        #expect(out.status == 2)
        #expect(
            out.stderr
                == "clab: argument 6 (caf\\xe9) is not valid UTF-8: clab passes text only (put other bytes in a file, e.g. on a volume)\n"
        )
        #expect(out.stdout.isEmpty)
    }
}
