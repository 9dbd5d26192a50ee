import ClabHost
import ClabRuntime
import ClabSpec
import Foundation
import Glibc
import Testing

/// The bundle half of the spec (SpecWire tag 15) and the strict reading of config.json.
@Suite("OCI bundles: the wire and config.json")
struct OCIBundleWireTests {
    func ociSpec() -> ContainerSpec {
        var spec = hostileSpec()
        spec.stageNumber = 12
        spec.hardening = Hardening()
        var oci = OCISetup()
        oci.mounts = [
            MountSpec(type: .proc, source: "proc", target: "/proc", flags: UInt32(MS_NOSUID)),
            MountSpec(type: .tmpfs, source: "tmpfs", target: "/dev", data: "mode=755,size=65536k"),
            MountSpec(type: .bind, source: "", target: "/data", flags: UInt32(MS_RDONLY), volume: 1),
        ]
        oci.rlimits = [ResourceLimit(resource: 7, soft: 1024, hard: .max)]
        oci.user = ProcessUser(uid: 1000, gid: 1000, additionalGids: [10, 20])
        oci.inheritable = Capability.mask([.chown])
        oci.readOnlyRoot = true
        spec.oci = oci
        return spec
    }

    @Test func theBundleFieldRoundTrips() throws {
        let spec = ociSpec()
        #expect(try ContainerSpec(wire: spec.wire) == spec)
        try spec.validate()
    }

    @Test func theBundleFieldIsDecodedStrictly() throws {
        func refusal(_ change: (inout ContainerSpec) -> Void) -> String? {
            var spec = ociSpec()
            change(&spec)
            do {
                _ = try ContainerSpec(wire: spec.wire)
                return nil
            } catch {
                return error.detail
            }
        }
        #expect(refusal { $0.oci?.mounts[2].volume = 5 }?.contains("naming a volume the spec lacks") == true)
        #expect(refusal { $0.oci?.mounts[0].volume = 0 }?.contains("a proc mount naming volume 0") == true)
        #expect(refusal { $0.oci?.mounts[0].flags = UInt32(MS_MOVE) }?.contains("mount flags") == true)
        #expect(refusal { $0.oci?.mounts[0].propagation = 3 }?.contains("mount propagation 3") == true)
        #expect(refusal { $0.oci?.rlimits[0].resource = 99 }?.contains("rlimit resource 99") == true)
        #expect(
            refusal {
                $0.oci?.rlimits[0].soft = .max
                $0.oci?.rlimits[0].hard = 1
            }?.contains("soft") == true)
        #expect(refusal { $0.oci?.mounts[1].data = "a\0b" }?.contains("NUL") == true)
    }
}

/// config.json read strictly: every problem one line naming the field, exit status 2, and
/// nothing left in the state directory.
@Suite("OCI bundles: reading config.json", needsRoot, .serialized)
struct OCIBundleConfigTests {
    static let dir = TestEnv.root + "/oci-config-\(getpid())"

    /// A `runc spec` bundle over a copy of the busybox rootfs (root's, as a user unpacks it).
    static func runcSpecBundle() throws -> String {
        try TestEnv.ensureImage()
        let dir = Self.dir + "-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let spec = try runProcess(["/usr/sbin/runc", "spec"], cwd: dir)
        try #require(spec.status == 0, "\(spec.stderr)")
        let copy = try runProcess(["/bin/cp", "-a", TestEnv.runtime.images.rootfs("busybox"), dir + "/rootfs"])
        try #require(copy.status == 0, "\(copy.stderr)")
        try edit(dir) { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["terminal"] = false
            process["args"] = ["sh", "-c", "id; grep -E '^(CapEff|CapBnd)' /proc/self/status; touch /x 2>&1; true"]
            config["process"] = process
        }
        return dir
    }

    static func edit(_ dir: String, _ change: (inout [String: Any]) -> Void) throws {
        let url = URL(fileURLWithPath: dir + "/config.json")
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        change(&config)
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted]).write(to: url)
    }

    /// Container directories still named `name` (other suites' containers come and go meanwhile).
    func leftovers(named name: String) -> [String] {
        ContainerRecord.all(in: TestEnv.layout).filter { $0.state.name == name }.map(\.id)
    }

    @Test func aRuncSpecBundleRunsInAUserNamespaceOnAShiftedCopy() throws {
        let dir = try Self.runcSpecBundle()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let name = "oci-runc-spec-\(getpid())"
        let out = try clab("run", "--name", name, "--bundle", dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("config.json has no user namespace: clab adds one, 0 → 100000"))
        #expect(out.stderr.contains("the container runs on a copy shifted to that range"))
        #expect(out.stdout.contains("uid=0(root) gid=0(root)"))
        #expect(out.stdout.contains("CapBnd:\t0000000020000420"))
        // root.readonly: true in `runc spec`'s config.
        #expect(out.stdout.contains("touch: /x: Read-only file system"))
        #expect(leftovers(named: name).isEmpty)
    }

    @Test func aUserOfTheBundleRunsWithoutCapabilities() throws {
        let dir = try Self.runcSpecBundle()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.edit(dir) { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["user"] = ["uid": 1000, "gid": 1000, "additionalGids": [10, 20]]
            config["process"] = process
        }
        let out = try clab("run", "--bundle", dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("uid=1000 gid=1000 groups=10,20"), "\(out.stdout)")
        #expect(out.stdout.contains("CapEff:\t0000000000000000"))
    }

    @Test(arguments: [
        (
            "linux.sysctl", #"["linux"]["sysctl"] = ["kernel.pid_max": "1000"]"#,
            #"config.json: linux.sysctl "kernel.pid_max" is not namespaced"#
        ),
        ("typo", "process.noNewPriviliges", "config.json: process.noNewPriviliges is not a runtime-spec field"),
        ("ns path", "netns-path", #"linux.namespaces[1].type "network" with a path is not supported"#),
        ("mapping", "map-root", "linux.uidMappings[0] must map containerID 0 to hostID 100000"),
        ("rlimit", "rlimit-high", "above clab's own hard limit"),
        ("cgroupsPath", "cgroup-dotdot", #"linux.cgroupsPath "../x" must name a cgroup"#),
        ("bind", "bind-missing", "mounts[7].source /nonexistent-clab does not exist"),
        ("type", "overlay", #"mounts[7].type "overlay" is not supported"#),
        ("caps", "caps-differ", "process.capabilities.effective has capabilities permitted lacks"),
    ])
    func refusals(name: String, change: String, message: String) throws {
        let dir = try Self.runcSpecBundle()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.edit(dir) { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            var process = config["process"] as? [String: Any] ?? [:]
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            switch change {
            case "process.noNewPriviliges": process["noNewPriviliges"] = true
            case "netns-path":
                var ns = linux["namespaces"] as? [[String: Any]] ?? []
                ns[1]["path"] = "/proc/1/ns/net"
                linux["namespaces"] = ns
            case "map-root":
                var ns = linux["namespaces"] as? [[String: Any]] ?? []
                ns.append(["type": "user"])
                linux["namespaces"] = ns
                linux["uidMappings"] = [["containerID": 0, "hostID": 0, "size": 65536]]
                linux["gidMappings"] = [["containerID": 0, "hostID": 0, "size": 65536]]
            case "rlimit-high": process["rlimits"] = [["type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1 << 40]]
            case "cgroup-dotdot": linux["cgroupsPath"] = "../x"
            case "bind-missing":
                mounts.append([
                    "destination": "/x", "type": "bind", "source": "/nonexistent-clab", "options": ["rbind"],
                ])
            case "overlay": mounts.append(["destination": "/x", "type": "overlay", "source": "overlay"])
            case "caps-differ":
                var caps = process["capabilities"] as? [String: Any] ?? [:]
                caps["effective"] = ["CAP_SYS_ADMIN"]
                process["capabilities"] = caps
            default: linux["sysctl"] = ["kernel.pid_max": "1000"]
            }
            config["linux"] = linux
            config["process"] = process
            config["mounts"] = mounts
        }
        // A state root of its own: other suites start and remove containers meanwhile.
        let root = TestEnv.root + "/refusal-" + name
        defer { try? FileManager.default.removeItem(atPath: root) }
        let out = try clab("run", "--root", root, "--bundle", dir)
        #expect(out.status == 2, "\(name): \(out.stdout)\(out.stderr)")
        #expect(out.stderr.contains(message), "\(name): \(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1, "\(name): \(out.stderr)")
        let containers = StateLayout.resolve(rootOption: root).containersDir
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: containers)) ?? []).isEmpty)
    }
}
