import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// A root-owned bundle rootfs runs in place through an idmapped mount when no other host user
/// can reach it (OCIBundle), and is copied otherwise; the mount goes with the container, and what
/// container root leaves in the rootfs stays out of every other host user's reach.
@Suite("OCI bundles: a root-owned rootfs in place (idmapped mount)", needsRoot, .serialized)
struct IdmappedRootTests {
    /// `guard/bundle` with `runc spec`'s config (no user namespace) over a root-owned copy of the
    /// busybox image; `guard` is mode 0700 (closed to all but root, as Go's MkdirTemp makes it).
    static func bundle(_ script: String) throws -> (guardDir: String, bundle: String) {
        try TestEnv.ensureImage()
        let guardDir = TestEnv.root + "/idmap-\(UUID().uuidString.prefix(6))"
        let dir = guardDir + "/bundle"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(guardDir, 0o700)
        let spec = try runProcess(["/usr/sbin/runc", "spec"], cwd: dir)
        try #require(spec.status == 0, "\(spec.stderr)")
        let copy = try runProcess(["/bin/cp", "-a", TestEnv.runtime.images.rootfs("busybox"), dir + "/rootfs"])
        try #require(copy.status == 0, "\(copy.stderr)")
        var st = stat()
        try #require(stat(dir + "/rootfs", &st) == 0 && st.st_uid == 0, "the image's rootfs is not root's")
        try OCIBundleConfigTests.edit(dir) { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["terminal"] = false
            process["args"] = ["sh", "-c", script]
            config["process"] = process
            config["root"] = ["path": "rootfs", "readonly": false]
        }
        return (guardDir, dir)
    }

    static func owner(_ path: String) -> uid_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_uid : nil
    }

    @Test func aClosedBundleRunsInPlaceAndAnOpenOneOnACopy() throws {
        let (guardDir, dir) = try Self.bundle("echo hi > /output; id -u; stat -c %u /output")
        defer { try? FS.removeTree(guardDir) }
        let out = try clab("run", "--bundle", dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("runs on it in place through an idmapped mount"), "\(out.stderr)")
        #expect(out.stdout == "0\n0\n", "\(out.stdout)")
        // Written back, owned by host root on disk; the mount is gone.
        #expect(FS.read(dir + "/rootfs/output") == "hi\n")
        #expect(Self.owner(dir + "/rootfs/output") == 0)
        #expect(Mounts.mounts(under: TestEnv.layout.containersDir).allSatisfy { !$0.hasSuffix("/bundle-root/tree") })
        #expect(!(FS.read("/proc/self/mountinfo") ?? "").contains(dir + "/rootfs"))

        // The same bundle reachable by everyone (0755 all the way): a shifted copy, nothing written back.
        unlink(dir + "/rootfs/output")
        chmod(guardDir, 0o755)
        let open = try clab("run", "--bundle", dir)
        #expect(open.status == 0, "\(open.stderr)")
        #expect(open.stderr.contains("the container runs on a copy shifted to that range"), "\(open.stderr)")
        #expect(open.stderr.contains("no directory above it is closed"), "\(open.stderr)")
        #expect(!FS.exists(dir + "/rootfs/output"))
    }

    /// Container root leaves a setuid-root program and uses a device node the bundle holds: on
    /// the host the program is root's and setuid, but only beneath the guard directory, which a
    /// non-root user cannot enter; the node opens nothing in the container (nodev).
    @Test func whatContainerRootLeavesIsOutOfOtherUsersReach() throws {
        let (guardDir, dir) = try Self.bundle(
            "cp /bin/busybox /suid && chmod 4755 /suid && ls -ln /suid; cat /null-node 2>&1 && echo opened; "
                + "awk '$5 == \"/\" { print \"root mount\", $6 }' /proc/self/mountinfo; echo end")
        defer { try? FS.removeTree(guardDir) }
        try #require(mknod(dir + "/rootfs/null-node", S_IFCHR | 0o666, dev_t(0x103)) == 0)
        let out = try clab("run", "--bundle", dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("-rwsr-xr-x"), "\(out.stdout)")
        #expect(out.stdout.contains("cat: can't open '/null-node': Permission denied"), "\(out.stdout)")
        #expect(!out.stdout.contains("opened"), "\(out.stdout)")
        // nosuid: an fd of /suid passed to a host user and run with execveat gains nothing.
        #expect(
            out.stdout.split(separator: "\n").contains { $0.hasPrefix("root mount ") && $0.contains("nosuid") },
            "\(out.stdout)")
        var st = stat()
        try #require(stat(dir + "/rootfs/suid", &st) == 0)
        #expect(st.st_uid == 0 && st.st_mode & S_ISUID != 0, "not setuid root on disk: the test proves nothing")
        // The guard: root's, closed to group and others; nobody (65534) cannot reach the program.
        #expect(stat(guardDir, &st) == 0 && st.st_uid == 0 && st.st_mode & 0o077 == 0)
        // runuser: real, effective and saved ids all nobody's, so no capability is left.
        let nobody = try runProcess(["/usr/sbin/runuser", "-u", "nobody", "--", dir + "/rootfs/suid", "id", "-u"])
        #expect(nobody.status != 0)
        #expect(nobody.stderr.contains("Permission denied"), "\(nobody.stderr)")
    }

    /// clab-runtime's container killed with kill -9 (nobody deletes it): `clab gc` unmounts the
    /// idmapped rootfs and removes the state, and the bundle's rootfs is untouched.
    @Test func gcAfterKill9RemovesTheIdmappedMount() throws {
        let (guardDir, dir) = try Self.bundle("sleep 60")
        defer { try? FS.removeTree(guardDir) }
        let root = TestEnv.root + "/idmap-rt-\(getpid())"
        defer { try? FS.removeTree(root) }
        let runtime = Path.dirname(TestEnv.clab) + "/clab-runtime"
        let id = "idmap-gc-\(getpid())"
        let created = try runProcess([
            "/bin/sh", "-c", "exec \"$0\" --root \"$1\" create --bundle \"$2\" \"$3\" </dev/zero >/dev/null 2>&1",
            runtime, root, dir, id,
        ])
        try #require(created.status == 0)
        let record = try #require(
            ContainerRecord.all(in: StateLayout.resolve(rootOption: root)).first { $0.state.name == id })
        let tree = record.dir + "/bundle-root/tree"
        #expect(Mounts.mounts(under: record.dir) == [tree])
        let pid = try #require(record.state.initPid)
        kill(pid, SIGKILL)
        #expect(eventually { !ContainerRecord.alive(pid, startTime: nil) })
        let gc = try clab("gc", "--root", root)
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(Mounts.mounts(under: record.dir).isEmpty)
        #expect(!FS.exists(tree))
        #expect(FS.exists(dir + "/rootfs/bin/busybox"), "the bundle's rootfs was touched")
        _ = try runProcess([runtime, "--root", root, "delete", "--force", id])
    }
}
