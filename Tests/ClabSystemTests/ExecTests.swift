import CShims
import Foundation
import Glibc
import Testing

@testable import ClabCgroups
@testable import ClabHost
@testable import ClabInit
@testable import ClabRuntime
@testable import ClabSpec
@testable import ClabSys

/// A container started in-process (as `clab run -d` will), with the `spec.wire` that `clab run`
/// writes beside its state, so `clab exec` and `pause` can find and join it.
final class RunningContainer {
    let prepared: PreparedContainer
    let container: Container
    private var stopped = false

    init(
        stage: Int = 12, command: [String] = ["sleep", "60"], hostUserNamespace: Bool = false,
        timeOffsets: TimeOffsets? = nil
    ) throws {
        try TestEnv.ensureImage()
        var request = RunRequest(stage: try Stage.numbered(stage), command: command)
        request.security.hostUserNamespace = hostUserNamespace
        request.security.timeOffsets = timeOffsets
        let runtime = TestEnv.runtime
        prepared = try runtime.prepare(request, log: { _ in })
        container = try runtime.makeContainer(prepared)
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        do {
            try container.start(stdio: (devNull, devNull, devNull))
            guard FileManager.default.createFile(atPath: dir + "/spec.wire", contents: Data(prepared.spec.wire)) else {
                throw SyscallError("write spec.wire")
            }
            chmod(dir + "/spec.wire", 0o600)
        } catch {
            stop()
            throw error
        }
    }

    var id: String { prepared.spec.id }
    var pid: pid_t { container.pid }
    var dir: String { prepared.spec.bundleDir }
    var record: ContainerRecord { get throws { try ContainerRecord.find(id, in: TestEnv.layout) } }

    /// Kills the init (thawing first happens in remove) and removes everything.
    func stop() {
        guard !stopped else { return }
        stopped = true
        if container.pid > 0 {
            kill(container.pid, SIGKILL)
            if let freezer = try? record.freezer { try? freezer.thaw() }
            _ = container.wait()
        }
        Runtime.remove(container, prepared)
    }

    deinit { stop() }
}

/// Runs `clab exec` through the library with pipes for stdout and stderr.
func execIn(
    _ c: RunningContainer, _ command: [String], tty: Bool = false, interactive: Bool = false,
    stdin: String = "", workdir: String? = nil, env: [String] = [], user: String? = nil,
    configure: (ExecSession) -> Void = { _ in }
) throws -> Output {
    var request = ExecRequest(command: command)
    request.tty = tty
    request.interactive = interactive
    request.user = user
    request.workdir = workdir
    request.env = env
    let out = try makePipe()
    let err = try makePipe()
    let input = try makePipe()
    _ = Array(stdin.utf8).withUnsafeBytes { write(input.write, $0.baseAddress, $0.count) }
    close(input.write)
    defer { close(input.read) }
    let session: ExecSession
    do {
        session = try ExecSession(try c.record, request, initPath: TestEnv.runtime.initPath)
        configure(session)
        try session.start(stdio: (input.read, out.write, err.write))
    } catch let error as ClabError {
        close(out.write)
        close(err.write)
        close(out.read)
        close(err.read)
        return Output(status: error.exitCode, stdout: "", stderr: error.message)
    }
    // Kept open until the end: with -t clab relays the pty's output into them.
    let status = session.wait()
    close(out.write)
    close(err.write)
    let stdout = readAll(out.read)
    let stderr = readAll(err.read)
    close(out.read)
    close(err.read)
    return Output(
        status: status.code, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self))
}

/// "Key:\tvalue" lines of /proc/<pid>/status that say what a process may do.
func securityLines(_ pid: pid_t) -> [String: String] {
    let status = Host.status(pid: "\(pid)") ?? [:]
    return status.filter {
        ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters"].contains($0.key)
    }
}

/// Utime + stime of a process, in clock ticks: a busy loop's counter.
func cpuTicks(_ pid: pid_t) -> Int {
    guard let stat = FS.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return -1 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
}

@Suite(.serialized, needsRoot) struct ExecTests {
    /// The command shares every namespace, the cgroups, the root directory and the capability,
    /// no_new_privs and seccomp state of the container's init, at each kind of container: a
    /// chroot (2), a host-mount-namespace pid namespace (3), pivot_root (4), a user namespace
    /// (7), cgroups and an overlay (9), the hardened one (12).
    @Test(arguments: [2, 3, 4, 7, 9, 12]) func joinsEverythingOfInit(stage: Int) throws {
        let c = try RunningContainer(stage: stage)
        defer { c.stop() }
        let session = try ExecSession(
            try c.record, ExecRequest(command: ["sleep", "30"]), initPath: TestEnv.runtime.initPath)
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        try session.start(stdio: (devNull, devNull, devNull))
        let command = try #require(session.commandPid)
        #expect(FS.readLink("/proc/\(command)/exe")?.hasSuffix("clab-init") == false, "the command runs")
        for kind in ["user", "mnt", "pid", "net", "uts", "ipc", "cgroup", "time"] {
            #expect(
                FS.readLink("/proc/\(command)/ns/\(kind)") == FS.readLink("/proc/\(c.pid)/ns/\(kind)"),
                "namespace \(kind)")
        }
        #expect(FS.read("/proc/\(command)/cgroup") == FS.read("/proc/\(c.pid)/cgroup"))
        var ours = stat()
        var theirs = stat()
        #expect(stat("/proc/\(command)/root/", &ours) == 0 && stat("/proc/\(c.pid)/root/", &theirs) == 0)
        #expect(ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino, "the same root directory")
        #expect(securityLines(command) == securityLines(c.pid))
        let status = try #require(Host.status(pid: "\(command)"))
        if stage >= 3 {
            // In the container's pid namespace, and not its PID 1.
            let nspid = status["NSpid"]?.split(separator: "\t") ?? []
            #expect(nspid.count == 2 && nspid.last != "1", "\(nspid)")
        }
        if stage >= 7 { #expect(status["Uid"]?.split(separator: "\t").first == "100000") }
        if stage == 12 {
            #expect(securityLines(command)["Seccomp"] == "2")
            #expect(securityLines(command)["NoNewPrivs"] == "1")
            #expect(securityLines(command)["CapEff"] == securityLines(command)["CapBnd"])
        }
        kill(command, SIGKILL)
        #expect(session.wait().code == 128 + SIGKILL, "the signal that ended the command passes through")
    }

    /// `--time-offset`: the command sees the container's clocks (its time namespace), not the host's.
    @Test func joinsTheTimeNamespace() throws {
        let c = try RunningContainer(timeOffsets: TimeOffsets(boottime: 3 * 86400))
        defer { c.stop() }
        #expect(FS.readLink("/proc/\(c.pid)/ns/time") != FS.readLink("/proc/self/ns/time"))
        let out = try execIn(c, ["cat", "/proc/uptime"])
        let inside = Double(out.stdout.split(separator: " ").first ?? "") ?? 0
        let host = Double(FS.read("/proc/uptime")?.split(separator: " ").first ?? "") ?? 0
        #expect(inside - host > 3 * 86400 - 60, "uptime inside \(inside), on the host \(host)")
    }

    /// `-u`: another user, who holds no capability (as with Docker), names from the container's files.
    @Test func userOption() throws {
        let c = try RunningContainer()
        defer { c.stop() }
        let script = "echo $(id -u) $(id -g); grep -E '^Cap(Eff|Prm|Bnd):' /proc/self/status"
        let numeric = try execIn(c, ["sh", "-c", script], user: "1000:1000")
        #expect(numeric.status == 0, "\(numeric.stderr)")
        let lines = numeric.stdout.split(separator: "\n")
        #expect(lines.first == "1000 1000")
        #expect(lines.contains("CapEff:\t0000000000000000") && lines.contains("CapPrm:\t0000000000000000"))
        #expect(securityLines(c.pid)["CapBnd"].map { lines.contains(Substring("CapBnd:\t" + $0)) } == true)
        let named = try execIn(c, ["id", "-u"], user: "nobody")
        #expect(named.stdout == "65534\n", "\(named.stderr)")
        let unknown = try execIn(c, ["true"], user: "no-such-user")
        #expect(unknown.status == 126 && unknown.stderr.contains("no such user"), "\(unknown.stderr)")
        #expect(try execIn(c, ["true"], user: "a;b").status == 2)
    }

    @Test func userLookupInTheContainersFiles() throws {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n# comment\nbroken\n"
        let group = "root:x:0:\nweb:x:33:\nlogs:x:4:web,other\nstaff:x:50:other\n"
        #expect(
            try ExecUser.resolve(user: "web", group: nil, passwd: passwd, groupFile: group)
                == ExecUser(uid: 33, gid: 33, groups: [4]))
        #expect(
            try ExecUser.resolve(user: "33", group: "50", passwd: passwd, groupFile: group)
                == ExecUser(uid: 33, gid: 50, groups: []))
        #expect(
            try ExecUser.resolve(user: "1234", group: nil, passwd: passwd, groupFile: group)
                == ExecUser(uid: 1234, gid: 0, groups: []))
        #expect(try ExecUser.resolve(user: "web", group: "staff", passwd: passwd, groupFile: group).gid == 50)
        #expect(throws: ClabError.self) {
            try ExecUser.resolve(user: "broken", group: nil, passwd: passwd, groupFile: group)
        }
        #expect(throws: ClabError.self) {
            try ExecUser.resolve(user: "web", group: "nogroup", passwd: passwd, groupFile: group)
        }
    }

    @Test func workdirEnvAndExitStatusPassThrough() throws {
        let c = try RunningContainer()
        defer { c.stop() }
        let out = try execIn(
            c, ["sh", "-c", "pwd; echo \"$FOO $HOSTNAME\"; exit 7"], workdir: "/tmp", env: ["FOO=bar"])
        #expect(out.status == 7, "\(out.stderr)")
        #expect(out.stdout == "/tmp\nbar \(c.prepared.spec.hostname)\n")
        #expect(try execIn(c, ["sh", "-c", "kill -TERM $$"]).status == 128 + SIGTERM)
        let missing = try execIn(c, ["true"], workdir: "/nonexistent")
        #expect(missing.status == 126)
        #expect(missing.stderr.contains("the working directory /nonexistent"), "\(missing.stderr)")
        let unknown = try execIn(c, ["no-such-command"])
        #expect(unknown.status == 127)
        #expect(unknown.stderr.contains("not found"), "\(unknown.stderr)")
    }

    @Test func ttyGivesTheCommandATerminal() throws {
        let c = try RunningContainer()
        defer { c.stop() }
        let out = try execIn(c, ["sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo tty-yes"], tty: true)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("tty-yes"), "\(out.stdout)")
        // -it: the caller's input reaches a shell on the pty.
        let shell = try execIn(c, ["sh"], tty: true, interactive: true, stdin: "echo hi-$((6*7))\nexit 5\n")
        #expect(shell.status == 5, "\(shell.stderr)")
        #expect(shell.stdout.contains("hi-42"), "\(shell.stdout)")
        let plain = try execIn(c, ["sh", "-c", "test -t 1 || echo not-a-tty"])
        #expect(plain.stdout == "not-a-tty\n")
    }

    /// CVE-2016-9962: runc leaked a host directory fd into the container. Only 0, 1, 2 reach
    /// the command (3 is ls's own listing of the directory).
    @Test func noHostFileDescriptorReachesTheCommand() throws {
        let c = try RunningContainer()
        defer { c.stop() }
        // A host fd without close-on-exec in clab's own process, as a careless caller might hold.
        let leak = open("/etc", O_RDONLY | O_DIRECTORY)
        defer { close(leak) }
        let out = try execIn(c, ["ls", "/proc/self/fd"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.split(separator: "\n") == ["0", "1", "2", "3"], "\(out.stdout)")
    }

    /// CVE-2019-5736: container root opened /proc/<pid>/exe of runc joining the container and
    /// overwrote runc's binary on the host. Between fork and execve our process is clab-init:
    /// it must be non-dumpable, so nothing in the container opens its exe (or anything of its
    /// /proc). Under `--userns host` container root is the host's root: only non-dumpability
    /// stands in the way (with a user namespace, the uid change alone already makes it so).
    @Test(arguments: [false, true]) func containerRootCannotOpenTheJoiningProcessExe(hostUserNamespace: Bool) throws {
        let c = try RunningContainer(hostUserNamespace: hostUserNamespace)
        defer { c.stop() }
        let session = try ExecSession(try c.record, ExecRequest(command: ["true"]), initPath: TestEnv.runtime.initPath)
        session.holdBeforeExec = true
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        try session.start(stdio: (devNull, devNull, devNull))
        let held = try #require(session.commandPid)
        // Held before its execve, running clab-init: a sealed copy, not the host's file, which a
        // script whose interpreter is /proc/self/exe would otherwise make the kernel run inside.
        #expect(
            FS.readLink("/proc/\(held)/exe")?.hasPrefix("/memfd:clab-init") == true,
            "\(FS.readLink("/proc/\(held)/exe") ?? "?")")
        var exe = stat()
        var host = stat()
        #expect(stat("/proc/\(held)/exe", &exe) == 0 && stat(TestEnv.runtime.initPath, &host) == 0)
        #expect(exe.st_ino != host.st_ino || exe.st_dev != host.st_dev)
        let writable = open("/proc/\(held)/exe", O_WRONLY | O_CLOEXEC)
        #expect(writable < 0, "even host root cannot write the sealed copy")
        if writable >= 0 { close(writable) }
        let nspid = try #require(Host.status(pid: "\(held)")?["NSpid"]?.split(separator: "\t").last)
        let attack = try execIn(
            c,
            [
                "sh", "-c",
                "cat /proc/\(nspid)/exe >/dev/null && echo READ; (true >> /proc/\(nspid)/exe) && echo WROTE; ls -l /proc/\(nspid)/exe; echo done",
            ])
        #expect(attack.stdout.hasSuffix("done\n"), "\(attack.stdout) \(attack.stderr)")
        #expect(!attack.stdout.contains("READ") && !attack.stdout.contains("WROTE"), "\(attack.stdout)")
        #expect(attack.stderr.contains("Permission denied"), "\(attack.stderr)")
        try session.release()
        #expect(session.wait().code == 0)
    }

    /// The command and the working directory are looked up in the container's root, and a
    /// magic link (/proc/self/exe is clab-init's binary before the execve) is refused.
    @Test func commandAndWorkdirResolveOnlyInsideTheContainer() throws {
        let c = try RunningContainer()
        defer { c.stop() }
        let setup = try execIn(
            c, ["sh", "-c", "ln -s /proc/self/exe /bin/evil && ln -s /etc /tmp/etc-link && echo inside > /etc/marker"])
        #expect(setup.status == 0, "\(setup.stderr)")
        let evil = try execIn(c, ["evil"])
        #expect(evil.status == 127, "\(evil.stdout) \(evil.stderr)")
        #expect(evil.stderr.contains("not found"), "\(evil.stderr)")
        let direct = try execIn(c, ["/bin/evil"])
        #expect(direct.status == 127, "\(direct.stderr)")
        let marker = try execIn(c, ["cat", "marker"], workdir: "/tmp/etc-link")
        #expect(marker.stdout == "inside\n", "\(marker.stderr)")
        let up = try execIn(c, ["pwd"], workdir: "/../../..")
        #expect(up.stdout == "/\n")
    }

    /// Pid reuse: clab-init names the init by a pidfd and checks it is the process whose start
    /// time clab recorded; a different start time (the pid now someone else's) is refused.
    @Test func aReusedInitPidIsRefused() throws {
        let c = try RunningContainer()
        defer { c.stop() }
        let session = try ExecSession(try c.record, ExecRequest(command: ["true"]), initPath: TestEnv.runtime.initPath)
        session.initStartTime += 1
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        #expect {
            try session.start(stdio: (devNull, devNull, devNull))
        } throws: { error in
            "\(error)".contains("is not the container's init any more")
        }
        // And the host side: a state whose start time does not match reads as stopped.
        var state = try c.record.state
        state.initStartTime = (state.initStartTime ?? 0) + 1
        #expect(ContainerRecord(state: state, dir: c.dir).status == .stopped)
    }

    @Test func aStoppedContainerIsNamedAsSuch() throws {
        let c = try RunningContainer(command: ["true"])
        defer { c.stop() }
        _ = c.container.wait()
        let record = try c.record
        #expect(record.status == .stopped)
        #expect(throws: ClabError.self) { try ExecSession(record, ExecRequest(command: ["true"]), initPath: "/x") }
        do {
            _ = try ExecSession(record, ExecRequest(command: ["true"]), initPath: "/x")
        } catch let error as ClabError {
            #expect(error.message.contains("is stopped"))
        }
        #expect(throws: ClabError.self) { try record.pause() }
    }

    /// A busy loop's CPU time does not advance while paused, and does after unpause; exec into a
    /// paused container and pausing twice are refused with the state named.
    @Test func pauseFreezesEveryProcessAndUnpauseThaws() throws {
        let c = try RunningContainer(command: ["sh", "-c", "while :; do :; done"])
        defer { c.stop() }
        let record = try c.record
        let freezer = try #require(record.freezer)
        #expect(freezer.state() == .thawed)
        #expect(record.status == .running)
        usleep(200_000)
        try record.pause()
        #expect(freezer.state() == .frozen)
        #expect(record.status == .paused)
        let before = cpuTicks(c.pid)
        usleep(500_000)
        #expect(cpuTicks(c.pid) == before, "a frozen loop ran")
        #expect(throws: ClabError.self) { try record.pause() }
        let refused = try execIn(c, ["true"])
        #expect(refused.status == 2 && refused.stderr.contains("is paused"), "\(refused.stderr)")
        try record.unpause()
        #expect(freezer.state() == .thawed)
        usleep(500_000)
        #expect(cpuTicks(c.pid) > before, "the thawed loop did not run")
        #expect(throws: ClabError.self) { try record.unpause() }
    }

    /// Removing a paused container (its clab killed it) thaws it, so its processes die and its
    /// cgroups, the freezer's included, go.
    @Test func aPausedContainerIsRemovedWithItsFreezerCgroup() throws {
        let c = try RunningContainer()
        let record = try c.record
        let freezer = try #require(record.freezer)
        #expect(freezer.dir.hasPrefix("/sys/fs/cgroup/freezer/"))
        try record.pause()
        let pid = c.pid
        c.stop()
        #expect(!FS.exists(freezer.dir))
        #expect(Host.startTime(pid: pid) == nil)
    }

    /// gc removes a crashed run's freezer cgroup, even frozen.
    @Test func gcRemovesAFrozenFreezerCgroup() throws {
        let driver = try CgroupDriver.detect()
        let id = "gcfreeze\(getpid())"
        let placement = try driver.place(id: id, parent: nil)
        let dir = try #require(placement.dirs["freezer"], "this host mounts a freezer hierarchy")
        try ContainerCgroup(placement: placement, limits: CgroupLimits()).create()
        try Freezer(dir: dir, version: .v1).freeze()
        let removed = GarbageCollector.removeCgroups(placement.allDirs, id: id)
        #expect(removed.contains(dir))
        #expect(!FS.exists(dir))
    }

    /// cgroup v2's cgroup.freeze, on this host's cgroup2 mount (a hybrid host's has no
    /// controllers, but every v2 cgroup has cgroup.freeze): a child of our own v2 cgroup that
    /// this test makes, holding only a busy loop it starts.
    @Test func freezerV2FreezesAndThaws() throws {
        let mounts = Mounts.parse(FS.read("/proc/self/mountinfo") ?? "")
        guard let v2 = mounts.first(where: { $0.fsType == "cgroup2" }),
            let own = (FS.read("/proc/self/cgroup") ?? "").split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return }
        let dir = v2.mountPoint + String(own.dropFirst(3)).replacing(#/\/$/#, with: "") + "/clab-freeze-\(getpid())"
        try #require(mkdir(dir, 0o755) == 0, "mkdir \(dir)")
        defer { _ = rmdir(dir) }
        var pid: pid_t = 0
        #expect(
            spawnWithDefaultSignals(&pid, ["/bin/sh", "-c", "while :; do :; done"], environment: [:], actions: nil)
                == 0)
        defer {
            if pid > 0 {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
            }
        }
        try FS.write("\(pid)", to: dir + "/cgroup.procs")
        let freezer = try #require(Freezer(cgroupDirs: [dir]))
        #expect(freezer.version == .v2 && freezer.state() == .thawed)
        try freezer.freeze()
        #expect(freezer.state() == .frozen)
        let before = cpuTicks(pid)
        usleep(400_000)
        #expect(cpuTicks(pid) == before, "a frozen loop ran")
        try freezer.thaw()
        #expect(freezer.state() == .thawed)
        usleep(400_000)
        #expect(cpuTicks(pid) > before)
        // Killed while frozen: on v2 a fatal signal ends a frozen task (v1 waits for the thaw).
        try freezer.freeze()
        kill(pid, SIGKILL)
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        pid = 0
    }

    @Test func freezerStateIsReadFromTheKernelFiles() throws {
        let dir = "/tmp/clab-freezer-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FS.write("FREEZING\n", to: dir + "/freezer.state")
        #expect(Freezer(cgroupDirs: [dir])?.state() == .freezing)
        try FileManager.default.removeItem(atPath: dir + "/freezer.state")
        try FS.write("1\n", to: dir + "/cgroup.freeze")
        try FS.write("populated 1\nfrozen 0\n", to: dir + "/cgroup.events")
        let v2 = try #require(Freezer(cgroupDirs: [dir]))
        #expect(v2.version == .v2 && v2.state() == .freezing)
        try FS.write("populated 1\nfrozen 1\n", to: dir + "/cgroup.events")
        #expect(v2.state() == .frozen)
        try FS.write("0\n", to: dir + "/cgroup.freeze")
        try FS.write("populated 1\nfrozen 0\n", to: dir + "/cgroup.events")
        #expect(v2.state() == .thawed)
        #expect(Freezer(cgroupDirs: ["/nonexistent"]) == nil)
    }

    /// clab killed with SIGKILL: clab-init dies of its death signal, and the command of its own.
    @Test(arguments: [[], ["-u", "1000"]]) func killingClabEndsTheCommand(options: [String]) throws {
        let c = try RunningContainer()
        defer { c.stop() }
        var environment = ProcessInfo.processInfo.environment
        environment["CLAB_ROOT"] = TestEnv.root
        var pid: pid_t = 0
        #expect(
            spawnWithDefaultSignals(
                &pid, [TestEnv.clab, "exec"] + options + [c.id, "--", "sleep", "30"], environment: environment,
                actions: nil) == 0)
        let pidsDir = try #require(try c.record.cgroupDirs.first { $0.contains("/pids/") })
        func members() -> [String] {
            (FS.read(pidsDir + "/cgroup.procs") ?? "").split(separator: "\n").map(String.init)
        }
        #expect(eventually(5) { members().count == 3 }, "init, clab-init and sleep: \(members())")
        kill(pid, SIGKILL)
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        #expect(
            eventually(5) { members() == ["\(c.pid)"] },
            "left in the container: \(members().map { ($0, FS.read("/proc/\($0)/stat") ?? "?") })")
    }

    @Test func theCommandLine() throws {
        let c = try RunningContainer()
        defer { c.stop() }
        let out = try clab("exec", c.id, "--", "sh", "-c", "echo hi; exit 3")
        #expect(out.status == 3 && out.stdout == "hi\n", "\(out.stderr)")
        // Lesson 13's transcripts.
        let same = try clab(
            "exec", c.id, "--", "sh", "-c",
            "[ \"$(readlink /proc/1/ns/mnt)\" = \"$(readlink /proc/self/ns/mnt)\" ] && echo same mount namespace as PID 1"
        )
        #expect(same.stdout == "same mount namespace as PID 1\n", "\(same.stderr)")
        let hardening = try clab("exec", c.id, "--", "grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status")
        #expect(hardening.stdout == "NoNewPrivs:\t1\nSeccomp:\t2\n", "\(hardening.stderr)")
        #expect(try clab("pause", c.id).status == 0)
        let twice = try clab("pause", c.id)
        #expect(twice.status == 2 && twice.stderr == "clab: container \(c.id) is already paused\n", "\(twice.stderr)")
        let exec = try clab("exec", c.id, "--", "true")
        #expect(exec.status == 2 && exec.stderr.contains("is paused"))
        #expect(try clab("unpause", c.id).status == 0)
        // SIGTERM to clab reaches the command (through clab-init), and clab exits with its status.
        var environment = ProcessInfo.processInfo.environment
        environment["CLAB_ROOT"] = TestEnv.root
        var pid: pid_t = 0
        #expect(
            spawnWithDefaultSignals(
                &pid, [TestEnv.clab, "exec", c.id, "--", "sleep", "30"], environment: environment, actions: nil) == 0)
        usleep(700_000)
        kill(pid, SIGTERM)
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        #expect(clab_wifexited(raw) != 0 && clab_wexitstatus(raw) == 128 + SIGTERM, "raw status \(raw)")
        let none = try clab("exec", "no-such-container", "--", "true")
        #expect(none.status == 1 && none.stderr.contains("no container 'no-such-container'"), "\(none.stderr)")
    }
}
