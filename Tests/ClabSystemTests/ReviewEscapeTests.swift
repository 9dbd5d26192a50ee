import ClabHost
import ClabRuntime
import Foundation
import Glibc
import Testing

@testable import ClabInit
@testable import ClabSys

/// Holes found by an attacker's review of the lifecycle, exec and OCI bundle code: each test
/// failed before its fix.
@Suite("Review: hostile bundles, records and output", needsRoot, .serialized)
struct ReviewEscapeTests {
    /// A bundle `clab bundle` wrote (user namespace, rootfs owned by the range: no copy), with
    /// `change` applied to its config.json.
    static func bundle(_ change: (inout [String: Any]) -> Void) throws -> String {
        try TestEnv.ensureImage()
        let dir = TestEnv.root + "/review-\(UUID().uuidString.prefix(8))"
        let made = try clab("bundle", "--root", TestEnv.root, "busybox", dir, "--", "sleep", "60")
        try #require(made.status == 0, "\(made.stderr)")
        try OCIBundleConfigTests.edit(dir, change)
        return dir
    }

    static func setCgroupsPath(_ path: String) -> (inout [String: Any]) -> Void {
        { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["cgroupsPath"] = path
            config["linux"] = linux
        }
    }

    /// An absolute cgroupsPath names a cgroup from each hierarchy's root: "/process_api/x" would
    /// have made clab create (and write limits into) a cgroup inside the machine's own. Only
    /// `prepare` runs here (it creates no cgroup), so the old code is tested without harm.
    @Test func anAbsoluteCgroupsPathIsRefused() throws {
        let dir = try Self.bundle(Self.setCgroupsPath("/process_api/clab-review-\(getpid())"))
        defer { try? FS.removeTree(dir) }
        do {
            let prepared = try TestEnv.runtime.prepare(bundle: dir, log: { _ in })
            try? FS.removeTree(prepared.spec.bundleDir)
            Issue.record("prepared with cgroups at \(prepared.cgroup?.placement.allDirs ?? [])")
        } catch let error as ClabError {
            // Absolute paths are taken only beneath clab's own cgroup (a cgroup namespace).
            #expect(error.message.contains("is absolute and"), "\(error)")
            #expect(error.message.contains("is not beneath clab's own cgroup"), "\(error)")
        }
    }

    /// A relative cgroupsPath whose last part is not the container's id: exec, pause and the
    /// cleanup acted only on cgroups named by the id, so the exec'd process ran outside the
    /// container's memory, pids and devices cgroups and its freezer, and the cgroups stayed
    /// behind after `clab rm`. Now cgroupsPath is the container's own cgroup (as in runc), and
    /// the level above it, which clab made, goes with it.
    @Test func aCgroupsPathKeepsExecInsideAndLeavesNothing() throws {
        let group = "clab-review-\(getpid())"
        let dir = try Self.bundle(Self.setCgroupsPath(group + "/c"))
        let name = "review-cg-\(getpid())"
        defer {
            _ = try? clab("rm", "-f", "--root", TestEnv.root, name)
            try? FS.removeTree(dir)
            for base in OCIConformanceTests.ownCgroups() {
                let top = base + "/" + group
                for child in (try? FileManager.default.contentsOfDirectory(atPath: top + "/c")) ?? [] {
                    rmdir(top + "/c/" + child)
                }
                rmdir(top + "/c")
                rmdir(top)
            }
        }
        let run = try clab("run", "-d", "--root", TestEnv.root, "--name", name, "--bundle", dir)
        try #require(run.status == 0, "\(run.stderr)")
        let record = try ContainerRecord.find(name, in: TestEnv.layout)
        let dirs = record.state.cgroups ?? []
        #expect(!dirs.isEmpty)
        #expect(record.cgroupDirs == dirs, "recorded cgroups not taken as the container's own: \(dirs)")
        #expect(dirs.allSatisfy { $0.hasSuffix("/\(group)/c") }, "not the cgroupsPath itself: \(dirs)")
        let levels = record.state.cgroupLevels ?? []
        #expect(!levels.isEmpty && levels.allSatisfy { $0.hasSuffix("/" + group) }, "\(levels)")
        // Inside its cgroup namespace, the container's own cgroups are "/"; outside, "/../..".
        let exec = try clab("exec", "--root", TestEnv.root, name, "--", "cat", "/proc/self/cgroup")
        #expect(exec.status == 0, "\(exec.stderr)")
        #expect(!exec.stdout.contains("/.."), "exec ran outside the container's cgroups:\n\(exec.stdout)")
        let removed = try clab("rm", "-f", "--root", TestEnv.root, name)
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(dirs.filter(FS.exists).isEmpty, "left behind: \(dirs.filter(FS.exists))")
        #expect(levels.filter(FS.exists).isEmpty, "levels left behind: \(levels.filter(FS.exists))")
    }

    /// A cgroupsPath naming a cgroup that exists (here one in the pids hierarchy only) is never
    /// adopted: the run is refused, that cgroup is untouched (its process stays in it), and clab
    /// leaves nothing: no cgroup in the other hierarchies, no level, no container directory.
    @Test func anExistingCgroupIsNeverAdopted() throws {
        let group = "clab-review-exists-\(getpid())"
        let bases = OCIConformanceTests.ownCgroups().filter { $0.hasPrefix("/sys/fs/cgroup/pids") }
        let pidsBase = try #require(bases.first, "no pids hierarchy")
        let theirs = pidsBase + "/" + group + "/c"
        try FileManager.default.createDirectory(atPath: theirs, withIntermediateDirectories: true)
        try FS.write("7\n", to: theirs + "/pids.max")
        defer {
            rmdir(theirs)
            rmdir(pidsBase + "/" + group)
        }
        let dir = try Self.bundle(Self.setCgroupsPath(group + "/c"))
        defer { try? FS.removeTree(dir) }
        let before = Set(ContainerRecord.all(in: TestEnv.layout).map(\.id))
        let run = try clab("run", "--root", TestEnv.root, "--bundle", dir)
        #expect(run.status != 0)
        #expect(run.stderr.contains("already exists"), "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
        #expect(FS.read(theirs + "/pids.max")?.trimmed == "7", "the existing cgroup was changed")
        for base in OCIConformanceTests.ownCgroups() where base != pidsBase {
            #expect(!FS.exists(base + "/" + group), "made \(base)/\(group)")
        }
        #expect(Set(ContainerRecord.all(in: TestEnv.layout).map(\.id)).subtracting(before).isEmpty)
    }

    /// linux.resources.cpu.cpus and mems (cpuset): the container runs on the CPUs given, seen
    /// from inside (/proc/self/status). On v1 the levels clab made for its cgroupsPath must get
    /// their parent's CPUs and nodes, else no task could join; all of them go at exit.
    @Test func cpusetPinsTheContainer() throws {
        let group = "clab-review-cpuset-\(getpid())"
        let dir = try Self.bundle { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["cgroupsPath"] = group + "/level/c"
            linux["resources"] = ["cpu": ["cpus": "0", "mems": "0"]]
            config["linux"] = linux
            var process = config["process"] as? [String: Any] ?? [:]
            process["args"] = ["grep", "Cpus_allowed_list", "/proc/self/status"]
            config["process"] = process
        }
        defer { try? FS.removeTree(dir) }
        let run = try clab("run", "--root", TestEnv.root, "--bundle", dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.split(whereSeparator: \.isWhitespace).last == "0", "\(run.stdout)")
        for base in OCIConformanceTests.ownCgroups() {
            #expect(!FS.exists(base + "/" + group), "left behind: \(base)/\(group)")
        }
        let bad = try Self.bundle { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["resources"] = ["cpu": ["cpus": "0;1"]]
            config["linux"] = linux
        }
        defer { try? FS.removeTree(bad) }
        let refused = try clab("run", "--root", TestEnv.root, "--bundle", bad)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("linux.resources.cpu.cpus \"0;1\" is not a list of CPUs"), "\(refused.stderr)")
    }

    /// A bundle's command and its rootfs's file names are the config's and the image's: with
    /// an ESC sequence and a newline in them, `clab ps` printed raw controls to the terminal
    /// and a second row, `clab start`'s error printed them too, and the init's failure, quoted
    /// into the events file, forged an "exited code=0" event there.
    @Test func hostileTextNeitherDrivesTheTerminalNorForgesEvents() throws {
        let file = "/x\n1700000000000 exited code=0 \u{1b}[2J"
        let dir = try Self.bundle { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["args"] = [file, "\u{1b}]0;owned\u{07}"]
            config["process"] = process
        }
        defer { try? FS.removeTree(dir) }
        // There, but not executable: the start fails at execve, naming it.
        let path = dir + "/rootfs" + file
        try FS.write("not a program\n", to: path)
        chown(path, 100_000, 100_000)
        let name = "review-esc-\(getpid())"
        defer { _ = try? clab("rm", "-f", "--root", TestEnv.root, name) }
        let created = try clab("create", "--root", TestEnv.root, "--name", name, "--bundle", dir)
        try #require(created.status == 0, "\(created.stderr)")
        let started = try clab("start", "--root", TestEnv.root, name)
        #expect(started.status != 0)
        #expect(started.stderr.contains("Permission denied"), "\(started.stderr)")
        let ps = try clab("ps", "-a", "--root", TestEnv.root)
        let events = try clab("events", "--root", TestEnv.root, name)
        let state = try clab("state", "--root", TestEnv.root, name)
        for (what, text) in [
            ("start", started.stderr), ("ps", ps.stdout), ("events", events.stdout), ("state", state.stdout),
        ] {
            #expect(
                !text.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 },
                "\(what): \(text.debugDescription)")
        }
        #expect(
            ps.stdout.split(separator: "\n").filter { $0.contains("1700000000000") }.allSatisfy { $0.contains(name) })
        let record = try ContainerRecord.find(name, in: TestEnv.layout)
        #expect(!record.events.contains { $0.milliseconds == 1_700_000_000_000 }, "\(record.events)")
        #expect(record.events.contains { $0.name == "failed" && $0.detail.contains("\\n1700000000000") })
    }

    @Test func shownTextEscapesControls() {
        #expect(ShownText.oneLine("a\u{1b}[2Jb\nc\td\u{7f}\u{9b}é") == "a\\x1b[2Jb\\nc\\td\\x7f\\u{9b}é")
        #expect(ShownText.lines("a\nb\t\u{07}") == "a\nb\t\\x07")
        #expect(ShownText.oneLine("plain") == "plain")
    }

    /// `clab exec -u` reads the container's /etc/group: a FIFO there held the open for ever
    /// (no writer), so the exec hung. A watchdog kills the container after 10 s (which ends
    /// the exec too) so the old code fails instead of hanging the suite.
    @Test func aFifoForEtcGroupDoesNotHangExec() throws {
        let c = try RunningContainer()
        defer { c.stop() }
        let made = try execIn(c, ["sh", "-c", "rm /etc/group && mkfifo /etc/group"])
        try #require(made.status == 0, "\(made.stderr)")
        let pid = c.pid
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 10, execute: watchdog)
        defer { watchdog.cancel() }
        let started = Date()
        let out = try execIn(c, ["id", "-u"], user: "nobody")
        #expect(Date().timeIntervalSince(started) < 8, "exec -u hung on the FIFO")
        #expect(out.status == 0 && out.stdout == "65534\n", "\(out.status) \(out.stdout) \(out.stderr)")
    }

    /// 4294967295 is (uid_t)-1, which setresuid reads as "unchanged": `-u 4294967295` ran the
    /// command as the container's root. And the container's /etc/group decides how many groups
    /// a user gets: checked in linear time and against the kernel's limit.
    @Test func userIdsTheKernelCannotTakeAreRefused() throws {
        let passwd = "root:x:0:0::/:/bin/sh\nweb:x:33:33::/:/bin/sh\n"
        #expect(throws: ClabError.self) {
            try ExecUser.resolve(user: "4294967295", group: nil, passwd: passwd, groupFile: "")
        }
        #expect(throws: ClabError.self) {
            try ExecUser.resolve(user: "33", group: "4294967295", passwd: passwd, groupFile: "")
        }
        let many = (1...70000).map { "g\($0):x:\($0):web\n" }.joined()
        let started = Date()
        #expect(throws: ClabError.self) {
            try ExecUser.resolve(user: "web", group: nil, passwd: passwd, groupFile: many)
        }
        #expect(Date().timeIntervalSince(started) < 5)
        let twice = "a:x:7:web\nb:x:7:web\nc:x:33:web\n"
        #expect(try ExecUser.resolve(user: "web", group: nil, passwd: passwd, groupFile: twice).groups == [7])
    }

    /// A record whose id is not its directory's name ("../../victim"): `clab rm` and gc turned
    /// the id back into a path and unmounted and emptied what it named (here a directory of
    /// the test's; "../../../.." would have been the host's root).
    @Test(arguments: [["rm", "-f", "liar"], ["gc"]])
    func aRecordsIdCannotPointOutsideItsDirectory(command: [String]) throws {
        let root = TestEnv.root + "/review-liar-\(UUID().uuidString.prefix(8))"
        defer { try? FS.removeTree(root) }
        let layout = StateLayout.resolve(rootOption: root)
        try layout.prepare()
        let victim = root + "/victim"
        try FS.makeDirectories(victim)
        try FS.write("keep me\n", to: victim + "/precious")
        let dir = layout.containerDir("0123456789ab")
        // A leftover of its host side, which gc's reconcile then removes.
        try FS.makeDirectories(dir + "/rootfs")
        try FS.write(
            #"{"id":"../../victim","stage":12,"clabPid":0,"created":1,"name":"liar","detached":{"image":"x","ports":[]}}"#,
            to: dir + "/state.json")
        // Old enough for gc to act on it.
        var old = [timespec(tv_sec: 1, tv_nsec: 0), timespec(tv_sec: 1, tv_nsec: 0)]
        utimensat(AT_FDCWD, dir, &old, 0)
        _ = try runProcess([TestEnv.clab] + command + ["--root", root])
        #expect(FS.exists(victim + "/precious"), "\(command) removed a file outside the container's directory")
    }

    /// A root.path that is not the range's is run on a copy shifted to the range, which makes
    /// the container the owner of copies of root's files: root.path naming a host directory
    /// ("/root") let the container read its 0600 files. Here a root-only directory of the
    /// test's stands for it, and busybox comes in through a bind.
    @Test func aShiftedCopyIsMadeOnlyOfARootfsInsideTheBundle() throws {
        let hostDir = TestEnv.root + "/review-hostroot-\(UUID().uuidString.prefix(8))"
        try FS.makeDirectories(hostDir)
        defer { try? FS.removeTree(hostDir) }
        try FS.write("TOP SECRET\n", to: hostDir + "/id_rsa")
        chmod(hostDir + "/id_rsa", 0o600)
        chmod(hostDir, 0o700)
        var busybox = ""
        let dir = try Self.bundle { config in
            config["root"] = ["path": hostDir]
            var process = config["process"] as? [String: Any] ?? [:]
            process["args"] = ["/bb/busybox", "cat", "/id_rsa"]
            config["process"] = process
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["namespaces"] = (linux["namespaces"] as? [[String: Any]] ?? []).filter {
                $0["type"] as? String != "user"
            }
            linux["uidMappings"] = nil
            linux["gidMappings"] = nil
            config["linux"] = linux
            busybox = "bin"
        }
        defer { try? FS.removeTree(dir) }
        try OCIBundleConfigTests.edit(dir) { config in
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            mounts.append([
                "destination": "/bb", "type": "bind", "source": dir + "/rootfs/" + busybox, "options": ["rbind", "ro"],
            ])
            config["mounts"] = mounts
        }
        let out = try clab("run", "--root", TestEnv.root, "--bundle", dir)
        #expect(!out.stdout.contains("TOP SECRET"), "the container read a root-only host file")
        #expect(out.status == 2, "\(out.stderr)")
        #expect(out.stderr.contains("is outside the bundle directory"), "\(out.stderr)")
    }
}
