import ClabSys
import Foundation
import Glibc
import Testing

@testable import ClabCgroups
@testable import ClabDevices
@testable import ClabHost
@testable import ClabRuntime

/// The device allow-list on this host (cgroup v1 devices controller, and a BPF device program on
/// the hybrid host's cgroup2 mount), proven with a process that is real root on the host: it
/// makes device nodes on a tmpfs in its own mount namespace (so no node appears on the host)
/// and reads one byte through them. A block device (8:0) must give EPERM, /dev/null must work.
@Suite("stage 12 · devices", .serialized, needsRoot)
struct DeviceCgroupTests {
    /// Runs as real root in a new mount namespace: mknod a block and a char device on a fresh
    /// tmpfs and read a byte from each, and from /dev/null and /dev/zero.
    static let probe = """
        mount -t tmpfs -o size=64k,mode=700 clab-devtest /mnt || exit 9
        mknod /mnt/sda b 8 0; echo "mknod-block=$?"
        head -c1 /mnt/sda >/dev/null 2>/mnt/err; echo "block=$?"; sed 's/^/block-error: /' /mnt/err
        mknod /mnt/null c 1 3 && head -c1 /mnt/null; echo "null-node=$?"
        head -c1 /dev/null; echo "devnull=$?"
        echo "zero=$(head -c1 /dev/zero | wc -c)"
        """

    /// Starts the probe held at a gate (`read`), hands its pid to `place` (which moves it into a
    /// cgroup), then lets it run; returns its output.
    func runProbe(place: (pid_t) throws -> Void) throws -> Output {
        let input = try makePipe()
        let out = try makePipe()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input.read, 0)
        posix_spawn_file_actions_adddup2(&actions, out.write, 1)
        posix_spawn_file_actions_adddup2(&actions, out.write, 2)
        var pid: pid_t = 0
        let argv = [
            "/bin/sh", "-c", "read go && exec unshare --mount --propagation private sh -c \"$0\"", Self.probe,
        ]
        let rc = spawnWithDefaultSignals(
            &pid, argv, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], actions: &actions)
        close(input.read)
        close(out.write)
        guard rc == 0 else {
            close(input.write)
            close(out.read)
            throw SyscallError("posix_spawn /bin/sh", errno: rc)
        }
        var placed: Error?
        do { try place(pid) } catch { placed = error }
        // No "go" if it could not be placed: the probe sees EOF and exits without running.
        if placed == nil { _ = "go\n".withCString { write(input.write, $0, 3) } }
        close(input.write)
        let data = readAll(out.read)
        close(out.read)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if let placed { throw placed }
        return Output(status: ExitStatus(raw: status).code, stdout: String(decoding: data, as: UTF8.self), stderr: "")
    }

    static func expectDenied(_ out: Output) {
        #expect(out.stdout.contains("mknod-block=0"), "\(out.stdout)")  // b *:* m: mknod is allowed
        #expect(out.stdout.contains("block=1"), "\(out.stdout)")
        #expect(
            out.stdout.contains("block-error: head: cannot open '/mnt/sda' for reading: Operation not permitted"),
            "\(out.stdout)")
        #expect(out.stdout.contains("null-node=0"), "\(out.stdout)")
        #expect(out.stdout.contains("devnull=0"), "\(out.stdout)")
        #expect(out.stdout.contains("zero=1"), "\(out.stdout)")
    }

    /// Without a device list the same probe opens the block node: the kernel gets as far as the
    /// driver (ENXIO here, no such disk), so EPERM below comes from the devices cgroup.
    @Test func withoutRulesTheBlockNodeReachesTheDriver() throws {
        let out = try runProbe { _ in }
        #expect(out.stdout.contains("mknod-block=0"), "\(out.stdout)")
        #expect(!out.stdout.contains("Operation not permitted"), "\(out.stdout)")
        #expect(out.stdout.contains("devnull=0"), "\(out.stdout)")
    }

    @Test func v1DevicesControllerDeniesABlockDeviceToRealRoot() throws {
        let driver = try CgroupDriver.detect()
        try #require(driver.version == .v1, "this host is cgroup v1 (the v2 program is tested in the VM)")
        let id = "clabtest-dev-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let placement = try driver.place(id: id, parent: nil, devices: true)
        let devicesDir = try #require(placement.dirs["devices"])
        #expect(devicesDir.hasPrefix("/sys/fs/cgroup/devices/") && devicesDir.hasSuffix("/clab/" + id))
        let cgroup = ContainerCgroup(
            placement: placement, limits: CgroupLimits(), deviceRules: DeviceRule.dockerDefault)
        try cgroup.create()
        defer { cgroup.remove() }
        // The kernel's own view of the list: exactly Docker's rules, nothing else.
        let list = (FS.read(devicesDir + "/devices.list") ?? "").split(separator: "\n").map(String.init)
        #expect(Set(list) == Set(DeviceRule.dockerDefault.map(\.description)), "\(list)")
        let out = try runProbe { pid in try cgroup.add(pid: pid) }
        Self.expectDenied(out)
        cgroup.remove()
        for dir in placement.allDirs { #expect(!FS.exists(dir), "\(dir) left behind") }
    }

    /// A stage-12 container (--userns host: real root, as Docker runs) is in a devices cgroup
    /// holding Docker's list: a root shell joined to it cannot open a block node; the cgroup is
    /// gone when the container ends.
    @Test func aStage12ContainerGetsTheListAndItGoesWithIt() throws {
        try #require(try CgroupDriver.detect().version == .v1)
        let root = TestEnv.root + "/devices"
        try TestEnv.ensureImage(root: root)
        let done = DataBox()
        let thread = Thread {
            let out = try? runProcess([
                TestEnv.clab, "step", "12", "--root", root, "--quiet", "--userns", "host", "--net", "none", "--", "sh",
                "-c", "cat /sys/fs/cgroup/devices/devices.list; echo x > /dev/null && echo null=ok; sleep 2",
            ])
            done.data = Data("\(out?.status ?? -1)|\(out?.stdout ?? "")|\(out?.stderr ?? "")".utf8)
        }
        thread.start()
        var devicesDir: String?
        let running = eventually(15) {
            let states = ContainerState.running(in: StateLayout.resolve(rootOption: root))
            devicesDir = states.first?.cgroups?.first { $0.hasPrefix("/sys/fs/cgroup/devices/") }
            return devicesDir.map { !(FS.read($0 + "/cgroup.procs") ?? "").isEmpty } ?? false
        }
        #expect(running, "no running stage-12 container with a devices cgroup")
        if let dir = devicesDir, running {
            Self.expectDenied(try runProbe { pid in try FS.write("\(pid)", to: dir + "/cgroup.procs") })
        }
        #expect(eventually(20) { done.done })
        let result = String(decoding: done.data, as: UTF8.self)
        #expect(result.hasPrefix("0|c *:* m\nb *:* m\nc 1:3 rwm\n"), "\(result)")
        #expect(result.contains("null=ok") && !result.contains("a *:* rwm"), "\(result)")
        if let dir = devicesDir { #expect(!FS.exists(dir), "\(dir) left behind") }
    }

    /// `clab gc` removes the devices cgroup a dead container left (its state file names it).
    @Test func gcRemovesALeftDevicesCgroup() throws {
        let driver = try CgroupDriver.detect()
        try #require(driver.version == .v1)
        let id = "clabtest-devgc-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let placement = try driver.place(id: id, parent: nil, devices: true)
        let cgroup = ContainerCgroup(
            placement: placement, limits: CgroupLimits(), deviceRules: DeviceRule.dockerDefault)
        try cgroup.create()
        defer { cgroup.remove() }
        let removed = GarbageCollector.removeCgroups(placement.allDirs, id: id)
        #expect(removed.contains(placement.dirs["devices"] ?? "?"), "\(removed)")
        for dir in placement.allDirs { #expect(!FS.exists(dir), "\(dir) left behind") }
    }

    /// The BPF program itself, on this hybrid host's cgroup2 mount (no controllers there, but
    /// cgroup BPF programs work on any cgroup2 directory): a cgroup of our own beneath ours, the
    /// program attached, the probe moved in.
    @Test func bpfDeviceProgramDeniesABlockDevice() throws {
        let unified = "/sys/fs/cgroup/unified"
        let selfCgroup = FS.read("/proc/self/cgroup") ?? ""
        let mine = selfCgroup.split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) }
        try #require(FS.exists(unified + "/cgroup.procs") && mine != nil, "no cgroup2 mount at \(unified)")
        let dir = CgroupDriver.join(
            unified, mine ?? "/", "clabtest-bpfdev-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try #require(mkdir(dir, 0o755) == 0, "mkdir \(dir): \(errnoDescription(errno))")
        defer { rmdir(dir) }
        try DeviceFilter.attach(DeviceRule.dockerDefault, toCgroup: dir)
        #expect(DeviceFilter.attachedPrograms(dir) == 1)
        let out = try runProbe { pid in try FS.write("\(pid)", to: dir + "/cgroup.procs") }
        Self.expectDenied(out)
    }
}
