import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// One bundle, written by `clab bundle`, run by clab, runc and crun: what the process sees must
/// agree. Each runtime gets its own copy of config.json (the same rootfs) with a cgroupsPath
/// beneath this process's own cgroup in every hierarchy; runc and crun keep their state under
/// /tmp, every container is deleted and every cgroup removed afterwards.
///
/// crun 1.8 refuses a hybrid cgroup host, and places a relative cgroupsPath from each
/// hierarchy's root: it runs in a private mount namespace without the cgroup2 mount and with
/// this process's memory cgroup bound over the memory hierarchy, so its cgroups land beneath
/// ours too (never beside the machine's `process_api/...`).
///
/// Differences that remain, by design, and are left out of the comparison:
/// - /sys/fs/cgroup: runc binds every v1 hierarchy, crun mounts the cgroup filesystem, clab
///   binds only the controllers it manages (memory, cpu, cpuacct, pids, devices).
@Suite("OCI bundles under clab, runc and crun", needsRoot, .serialized)
struct OCIConformanceTests {
    static let probe = """
        echo "== ids"; id; echo "== hostname"; hostname
        echo "== status"; grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status
        echo "== mounts"; awk '{for(i=7;i<=NF;i++) if($i=="-"){print $5, $(i+1); break}}' /proc/self/mountinfo | grep -v '^/sys/fs/cgroup' | sort
        echo "== limits"; cat /proc/self/limits
        echo "== memory"; cat /sys/fs/cgroup/memory/memory.limit_in_bytes
        echo "== pids"; cat /sys/fs/cgroup/pids/pids.max
        """

    let dir = TestEnv.root + "/oci-\(UUID().uuidString.prefix(8))"
    var group: String { "clab-oci-\(getpid())-" + Path.basename(dir) }

    /// The runtime's own copy of config.json, with a cgroupsPath, limits and the probe.
    func bundle(for runtime: String) throws -> String {
        let path = dir + "/" + runtime
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))
        var config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var root = try #require(config["root"] as? [String: Any])
        root["path"] = dir + "/rootfs"
        config["root"] = root
        var linux = try #require(config["linux"] as? [String: Any])
        linux["cgroupsPath"] = group + "/" + runtime
        var resources = try #require(linux["resources"] as? [String: Any])
        resources["memory"] = ["limit": 64 << 20]
        resources["pids"] = ["limit": 100]
        linux["resources"] = resources
        config["linux"] = linux
        let out = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted])
        try out.write(to: URL(fileURLWithPath: path + "/config.json"))
        return path
    }

    /// Every hierarchy's directory of this process's cgroup: (mount dir, own path).
    static func ownCgroups() -> [String] {
        (FS.read("/proc/self/cgroup") ?? "").split(separator: "\n").compactMap { line in
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { return nil }
            let first = parts[1].split(separator: ",").first.map(String.init) ?? ""
            let mount = first.isEmpty ? "unified" : first.replacing("name=", with: "")
            return "/sys/fs/cgroup/\(mount)\(parts[2] == "/" ? "" : String(parts[2]))"
        }
    }

    func removeCgroups() {
        for base in Self.ownCgroups() {
            let top = base + "/" + group
            for child in (try? FileManager.default.contentsOfDirectory(atPath: top)) ?? [] {
                rmdir(top + "/" + child)
            }
            rmdir(top)
        }
    }

    func sections(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        var name = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("== ") {
                name = String(line.dropFirst(3))
            } else if !name.isEmpty {
                result[name, default: ""] += line + "\n"
            }
        }
        return result
    }

    @Test func theSameBundleLooksTheSameUnderClabRuncAndCrun() throws {
        try TestEnv.ensureImage()
        defer {
            _ = try? runProcess(["/usr/sbin/runc", "--root", dir + "/runc-state", "delete", "-f", "oci-runc"])
            _ = try? runProcess(["/usr/bin/crun", "--root", dir + "/crun-state", "delete", "-f", "oci-crun"])
            removeCgroups()
            try? FileManager.default.removeItem(atPath: dir)
        }
        let made = try clab("bundle", "busybox", dir, "--", "sh", "-c", Self.probe)
        try #require(made.status == 0, "\(made.stderr)")
        let runc = try runProcess(
            ["/usr/sbin/runc", "--root", dir + "/runc-state", "run", "-b", try bundle(for: "runc"), "oci-runc"])
        let memory = try #require(Self.ownCgroups().first { $0.hasPrefix("/sys/fs/cgroup/memory") })
        let crun = try runProcess([
            "/usr/bin/unshare", "-m", "/bin/sh", "-c",
            "umount /sys/fs/cgroup/unified 2>/dev/null; mount --bind \"$1\" /sys/fs/cgroup/memory && exec crun --root \"$2\" run -b \"$3\" oci-crun",
            "sh", memory, dir + "/crun-state", try bundle(for: "crun"),
        ])
        let ours = try clab("run", "--bundle", try bundle(for: "clab"))
        for (name, out) in [("runc", runc), ("crun", crun), ("clab", ours)] {
            #expect(out.status == 0, "\(name): \(out.stderr)")
        }
        let expected = sections(runc.stdout)
        #expect(expected["ids"]?.hasPrefix("uid=0(root) gid=0(root)") == true)
        #expect(expected["memory"]?.trimmed == "\(64 << 20)")
        #expect(expected["pids"]?.trimmed == "100")
        #expect(expected["status"]?.contains("Seccomp:\t2") == true)
        for (name, out) in [("crun", crun), ("clab", ours)] {
            let got = sections(out.stdout)
            for key in ["ids", "hostname", "status", "mounts", "limits", "memory", "pids"] {
                #expect(
                    got[key] == expected[key],
                    "\(name) differs from runc in \(key):\n\(got[key] ?? "nothing")\nrunc:\n\(expected[key] ?? "nothing")"
                )
            }
        }
    }
}
