import ClabHost
import ClabRuntime
import ClabSpec
import Foundation
import Glibc
import Testing

/// The bundle fields beyond issue 13's (issue 16's config coverage) on the wire: each new
/// field survives the trip to clab-init and a damaged one is refused.
@Suite("OCI config coverage: the wire")
struct OCIConfigCoverageWireTests {
    func spec() -> ContainerSpec {
        var spec = hostileSpec()
        spec.stageNumber = 12
        spec.hardening = Hardening()
        var oci = OCISetup()
        oci.inheritable = Capability.mask([.kill, .chown])
        oci.capabilitySets = CapabilitySets(
            effective: Capability.mask([.kill]), permitted: Capability.mask([.kill, .chown]),
            ambient: Capability.mask([.kill]))
        oci.domainname = "example.org"
        oci.umask = 0o027
        oci.oomScoreAdj = -17
        oci.rootfsPropagation = UInt32(MS_SHARED)
        oci.sysctls = [Sysctl(key: "net.ipv4.ip_forward", value: "1")]
        oci.devices = [DeviceNode(type: "p", path: "/dev/fifo", major: 0, minor: 0, mode: 0o620, uid: 1, gid: 2)]
        oci.hooks.prestart = [OCIHooks.Hook(path: "/bin/true", args: ["true", "x"], env: ["A=b"], timeout: 3)]
        oci.hooks.poststop = [OCIHooks.Hook(path: "/bin/false")]
        oci.stateID = "web"
        oci.bundlePath = "/tmp/bundle"
        oci.annotations = ["a": "b", "c": "d"]
        oci.hostPID = 4242
        spec.oci = oci
        return spec
    }

    @Test func theNewFieldsRoundTrip() throws {
        let spec = spec()
        #expect(try ContainerSpec(wire: spec.wire) == spec)
        try spec.validate()
    }

    @Test func stateJSONIsTheRuntimeSpecsState() {
        let json = spec().oci?.hookState(status: "creating") ?? ""
        #expect(
            json
                == #"{"ociVersion":"1.0.2","id":"web","status":"creating","pid":4242,"bundle":"/tmp/bundle","annotations":{"a":"b","c":"d"}}"#
        )
    }

    @Test func brokenFieldsAreRefusedBeforeTheyLeaveClab() {
        func refusal(_ change: (inout OCISetup) -> Void) -> String? {
            var s = spec()
            if var oci = s.oci {
                change(&oci)
                s.oci = oci
            }
            do {
                try s.validate()
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal { $0.capabilitySets?.ambient = Capability.mask([.sysAdmin]) }?.contains("ambient") == true)
        #expect(refusal { $0.capabilitySets?.effective = Capability.mask([.sysAdmin]) }?.contains("effective") == true)
        #expect(
            refusal { $0.sysctls = [Sysctl(key: "kernel.pid_max", value: "9")] }?.contains("kernel.pid_max") == true)
        #expect(refusal { $0.sysctls = [Sysctl(key: "net/../../x", value: "9")] } != nil)
        #expect(refusal { $0.devices[0].path = "/etc/passwd" }?.contains("below /dev") == true)
        #expect(refusal { $0.hooks.poststart = [OCIHooks.Hook(path: "true")] }?.contains("not absolute") == true)
        #expect(refusal { $0.umask = 0o1777 }?.contains("umask") == true)
    }

    @Test func onlyNamespacedSysctlsAreKnownAsSuch() {
        #expect(Sysctl.namespace(of: "net.ipv4.ip_forward") == "network")
        #expect(Sysctl.namespace(of: "kernel.shmmax") == "ipc")
        #expect(Sysctl.namespace(of: "fs.mqueue.msg_max") == "ipc")
        #expect(Sysctl.namespace(of: "kernel.pid_max") == nil)
        #expect(Sysctl.namespace(of: "vm.overcommit_memory") == nil)
        #expect(!Sysctl.isWellFormed("net..x") && !Sysctl.isWellFormed("net./x") && Sysctl.isWellFormed("net.a-b.c_d"))
    }
}

/// Each field as the container's process sees it, through `clab run --bundle` over a `runc
/// spec` bundle; and the hooks' timing, input and failure semantics.
@Suite("OCI config coverage: what the container sees", needsRoot, .serialized)
struct OCIConfigCoverageTests {
    /// A `runc spec` bundle running `script`, edited by `change`.
    func bundle(_ script: String, _ change: @escaping (inout [String: Any]) -> Void = { _ in }) throws -> String {
        let dir = try OCIBundleConfigTests.runcSpecBundle()
        try OCIBundleConfigTests.edit(dir) { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["args"] = ["sh", "-c", script]
            config["process"] = process
            change(&config)
        }
        return dir
    }

    func run(_ dir: String, root: String? = nil) throws -> Output {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        if let root { return try clab("run", "--root", root, "--bundle", dir) }
        return try clab("run", "--bundle", dir)
    }

    static func set(_ config: inout [String: Any], _ section: String, _ key: String, _ value: Any) {
        var part = config[section] as? [String: Any] ?? [:]
        part[key] = value
        config[section] = part
    }

    @Test func ambientCapabilitiesReachANonRootProcess() throws {
        let caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
        let dir = try bundle("grep -E '^Cap(Amb|Eff|Prm)' /proc/self/status") { config in
            Self.set(&config, "process", "user", ["uid": 1000, "gid": 1000])
            Self.set(
                &config, "process", "capabilities",
                ["bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps])
        }
        let out = try run(dir)
        #expect(out.status == 0, "\(out.stderr)")
        // CAP_KILL is bit 5 (0x20), CAP_NET_BIND_SERVICE bit 10 (0x400): kept across execve
        // for uid 1000 only through the ambient set.
        #expect(out.stdout.contains("CapAmb:\t0000000000000420"), "\(out.stdout)")
        #expect(out.stdout.contains("CapEff:\t0000000000000420"), "\(out.stdout)")
    }

    @Test func effectiveNarrowerThanPermittedForAUser() throws {
        let dir = try bundle("grep -E '^Cap(Eff|Prm)' /proc/self/status") { config in
            Self.set(&config, "process", "user", ["uid": 1000, "gid": 1000])
            Self.set(
                &config, "process", "capabilities",
                [
                    "bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                    "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"],
                ])
        }
        let out = try run(dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("CapPrm:\t0000000000000020"), "\(out.stdout)")
    }

    @Test func domainnameUmaskAndOOMScore() throws {
        let dir = try bundle("cat /proc/sys/kernel/domainname; umask; cat /proc/self/oom_score_adj") { config in
            config["domainname"] = "lab.example"
            var process = config["process"] as? [String: Any] ?? [:]
            process["user"] = ["uid": 0, "gid": 0, "umask": 0o027]
            process["oomScoreAdj"] = 512
            config["process"] = process
        }
        let out = try run(dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "lab.example\n0027\n512\n", "\(out.stdout)")
        // The host's own domain name is untouched (a UTS namespace of its own).
        #expect((try? String(contentsOfFile: "/proc/sys/kernel/domainname", encoding: .utf8)) != "lab.example\n")
    }

    /// ip_default_ttl, not ip_forward: parallel network tests switch the host's ip_forward on and
    /// off, and no test or clab code touches the host's default TTL or shmmni.
    @Test func namespacedSysctlsAreSetInsideOnly() throws {
        let ttl = "/proc/sys/net/ipv4/ip_default_ttl"
        let shmmni = "/proc/sys/kernel/shmmni"
        let host = (
            try String(contentsOfFile: ttl, encoding: .utf8), try String(contentsOfFile: shmmni, encoding: .utf8)
        )
        let target = host.0 == "77\n" ? "78" : "77"
        let dir = try bundle("cat \(ttl) \(shmmni)") { config in
            Self.set(&config, "linux", "sysctl", ["net.ipv4.ip_default_ttl": target, "kernel.shmmni": "1234"])
        }
        let out = try run(dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "\(target)\n1234\n", "\(out.stdout)")
        #expect(try String(contentsOfFile: ttl, encoding: .utf8) == host.0)
        #expect(try String(contentsOfFile: shmmni, encoding: .utf8) == host.1)
    }

    @Test(arguments: [
        ("kernel.pid_max", "not namespaced: it would change the whole host"),
        ("net.ipv4.ip_forward", "belongs to the network namespace, which the container shares with the host"),
    ])
    func hostWideSysctlsAreRefused(key: String, message: String) throws {
        let dir = try bundle("true") { config in
            Self.set(&config, "linux", "sysctl", [key: "1"])
            if key.hasPrefix("net.") {
                var linux = config["linux"] as? [String: Any] ?? [:]
                let ns = (linux["namespaces"] as? [[String: Any]] ?? []).filter { $0["type"] as? String != "network" }
                linux["namespaces"] = ns
                config["linux"] = linux
            }
        }
        let root = TestEnv.root + "/sysctl-refusal-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let out = try run(dir, root: root)
        #expect(out.status == 2, "\(out.stderr)")
        #expect(out.stderr.contains(message), "\(out.stderr)")
        let containers = StateLayout.resolve(rootOption: root).containersDir
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: containers)) ?? []).isEmpty)
    }

    @Test(arguments: [("shared", "shared:"), ("unbindable", "unbindable"), ("private", "")])
    func rootfsPropagation(mode: String, tag: String) throws {
        // The root's line of mountinfo: "ID PARENT MAJ:MIN / / OPTIONS [optional fields] - ...".
        let dir = try bundle("awk '$5 == \"/\" { print }' /proc/self/mountinfo") { config in
            Self.set(&config, "linux", "rootfsPropagation", mode)
            Self.set(&config, "root", "readonly", false)
        }
        let out = try run(dir)
        #expect(out.status == 0, "\(out.stderr)")
        let fields = out.stdout.split(separator: " - ").first.map(String.init) ?? ""
        if tag.isEmpty {
            #expect(!fields.contains("shared:") && !fields.contains("master:"), "\(out.stdout)")
        } else {
            #expect(fields.contains(tag), "\(out.stdout)")
        }
    }

    @Test func devicesAFIFOMadeAndAHostNodeBound() throws {
        let dir = try bundle("stat -c '%F %a %u:%g' /dev/clab-fifo; stat -c '%F %t:%T' /dev/kmsg") { config in
            Self.set(
                &config, "linux", "devices",
                [
                    ["path": "/dev/clab-fifo", "type": "p", "fileMode": 0o620, "uid": 7, "gid": 8],
                    ["path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11],
                ])
        }
        let out = try run(dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("fifo 620 7:8"), "\(out.stdout)")
        // busybox stat prints major and minor in hex.
        #expect(out.stdout.contains("character special file 1:b"), "\(out.stdout)")
    }

    @Test func aDeviceTheHostLacksIsRefused() throws {
        let dir = try bundle("true") { config in
            Self.set(&config, "linux", "devices", [["path": "/dev/clab-none", "type": "c", "major": 10, "minor": 250]])
        }
        let root = TestEnv.root + "/device-refusal-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let out = try run(dir, root: root)
        #expect(out.status == 2, "\(out.stderr)")
        #expect(out.stderr.contains("linux.devices[0] (/dev/clab-none c 10:250) is not a device node of this host"))
    }

    // MARK: - hooks

    /// A hook that appends its stdin and $X to `file`.
    static func recorder(_ file: String, _ tag: String, fail: Bool = false) -> [String: Any] {
        [
            "path": "/bin/sh",
            "args": ["sh", "-c", "cat >> \(file); echo \" $X\" >> \(file)\(fail ? "; exit 3" : "")"],
            "env": ["X=\(tag)"],
        ]
    }

    /// A host directory the hooks write to (container root, uid 100000, writes there too).
    func hookDir() throws -> String {
        // Below /tmp: createContainer runs as container root, which cannot search TestEnv.root.
        let dir = "/tmp/clab-hooks-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o777)
        // The host's hooks (root) and the container's (uid 100000) append to one file.
        _ = FileManager.default.createFile(atPath: dir + "/log", contents: nil, attributes: [.posixPermissions: 0o666])
        return dir
    }

    @Test func everyHookRunsInOrderWithTheStateOnStdin() throws {
        let log = try hookDir()
        defer { try? FileManager.default.removeItem(atPath: log) }
        let file = log + "/log"
        let dir = try bundle("cat /start-hook; echo process >> /hooks/log") { config in
            config["hooks"] = [
                "prestart": [Self.recorder(file, "prestart")],
                "createRuntime": [Self.recorder(file, "createRuntime")],
                "createContainer": [Self.recorder(file, "createContainer")],
                // In the container, after pivot_root: its own paths.
                "startContainer": [
                    [
                        "path": "/bin/sh", "args": ["sh", "-c", "cat > /start-hook; echo \" $X\" >> /start-hook"],
                        "env": ["X=start"],
                    ]
                ],
                "poststart": [Self.recorder(file, "poststart")],
                "poststop": [Self.recorder(file, "poststop")],
            ]
            Self.set(&config, "root", "readonly", false)
            config["annotations"] = ["course": "clab"]
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            mounts.append(["destination": "/hooks", "type": "bind", "source": log, "options": ["rbind", "rw"]])
            config["mounts"] = mounts
        }
        let out = try run(dir)
        #expect(out.status == 0, "\(out.stderr)")
        // startContainer ran inside the container, before the process, with the state JSON.
        #expect(out.stdout.contains(#""status":"created""#) && out.stdout.contains(" start"), "\(out.stdout)")
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        let tags = lines.compactMap { $0.split(separator: " ").last.map(String.init) }
        // poststart and the process run concurrently: only their relative order to the rest is fixed.
        #expect(Array(tags.prefix(3)) == ["prestart", "createRuntime", "createContainer"], "\(lines)")
        #expect(Set(tags[3..<5]) == ["poststart", "process"], "\(lines)")
        #expect(tags.last == "poststop", "\(lines)")
        let prestart = lines[0]
        #expect(prestart.contains(#""status":"creating""#) && prestart.contains(#""annotations":{"course":"clab"}"#))
        #expect(prestart.contains(#""bundle":"\#(dir)""#), "\(prestart)")
        #expect(prestart.range(of: #""pid":[1-9][0-9]*"#, options: .regularExpression) != nil, "\(prestart)")
        #expect(lines.first { $0.hasSuffix("poststart") }?.contains(#""status":"running""#) == true)
        #expect(lines.last?.contains(#""status":"stopped""#) == true)
    }

    @Test(arguments: ["prestart", "createRuntime", "createContainer", "startContainer"])
    func aFailingCreateOrStartHookStopsTheContainer(phase: String) throws {
        let log = try hookDir()
        defer { try? FileManager.default.removeItem(atPath: log) }
        let dir = try bundle("echo process > /hooks/ran") { config in
            config["hooks"] = [phase: [["path": "/bin/sh", "args": ["sh", "-c", "exit 3"]]]]
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            mounts.append(["destination": "/hooks", "type": "bind", "source": log, "options": ["rbind", "rw"]])
            config["mounts"] = mounts
        }
        let root = TestEnv.root + "/hook-fail-\(getpid())-\(phase)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let out = try run(dir, root: root)
        #expect(out.status != 0, "\(phase): \(out.stdout)")
        #expect(
            out.stderr.contains("hooks.\(phase)[0] (/bin/sh -c exit 3)") && out.stderr.contains("exited 3"),
            "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: log + "/ran"), "\(phase): the process ran")
        let containers = StateLayout.resolve(rootOption: root).containersDir
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: containers)) ?? []).isEmpty)
    }

    @Test func poststartAndPoststopFailuresAreWarnings() throws {
        let log = try hookDir()
        defer { try? FileManager.default.removeItem(atPath: log) }
        let file = log + "/log"
        let dir = try bundle("echo ran") { config in
            config["hooks"] = [
                "poststart": [Self.recorder(file, "a", fail: true), Self.recorder(file, "b")],
                "poststop": [Self.recorder(file, "c", fail: true), Self.recorder(file, "d")],
            ]
        }
        let out = try run(dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "ran\n")
        #expect(out.stderr.contains("warning: hooks.poststart[0]") && out.stderr.contains("warning: hooks.poststop[0]"))
        // The hooks after a failed one still ran.
        let tags = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").compactMap {
            $0.split(separator: " ").last.map(String.init)
        }
        #expect(tags == ["a", "b", "c", "d"], "\(tags)")
    }

    @Test func aHookPastItsTimeoutIsKilled() throws {
        let dir = try bundle("echo ran") { config in
            config["hooks"] = ["prestart": [["path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1]]]
        }
        let started = Date()
        let out = try run(dir)
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(out.status != 0)
        #expect(
            out.stderr.contains("hooks.prestart[0] (/bin/sleep 30): killed after its timeout of 1 s"), "\(out.stderr)")
        #expect(!out.stdout.contains("ran"))
    }
}
