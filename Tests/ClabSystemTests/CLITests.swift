import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Glibc
import Testing

/// Black-box: the clab binary as a user runs it.
@Suite("clab step from the outside", needsRoot)
struct CLIBehaviourTests {
    @Test(arguments: [
        (["step", "0"], "no stage 0: stages go from 1 to \(Stage.all.count)"),
        (["step", "99"], "no stage 99"),
        (["step", "x"], "'x' is not a stage number"),
        (["step", "2", "--bogus"], "Unknown option '--bogus'"),
        (["step", "2", "--hostname", "a b", "--", "true"], "invalid hostname 'a b'"),
        (["step", "1", "--hostname", "web", "--", "true"], "--hostname needs stage 2 or later"),
        (["check", "\(Stage.all.count + 1)"], "no stage \(Stage.all.count + 1)"),
        (["step", "8", "--image", "busybox", "--", "true"], "--image needs stage 9 or later"),
        (["step", "9", "--keep", "--", "true"], "--keep needs --name NAME"),
        (["step", "9", "--name", "Bad/Name", "--keep", "--", "true"], "invalid container name 'Bad/Name'"),
        (["step", "9", "--quiet", "-v", "data:/d", "--", "true"], "-v needs stage 10 or later"),
        (["step", "7", "--memory", "64M", "--", "true"], "--memory needs stage 8 or later"),
        (["step", "8", "--memory", "abc", "--", "true"], "--memory abc is not a size"),
        (["step", "8", "--memory", "0", "--", "true"], "--memory 0 is not a size"),
        (["step", "8", "--memory", "1M", "--", "true"], "below clab's minimum of 4M"),
        (["step", "8", "--cpus", "-1", "--", "true"], "--cpus -1 is not a positive number"),
        (["step", "8", "--cpus", "0", "--", "true"], "--cpus 0 is not a positive number"),
        (["step", "8", "--pids", "0", "--", "true"], "--pids 0 must be a whole number"),
        (["step", "8", "--cpu-shares", "1", "--", "true"], "--cpu-shares 1 must be"),
        (["step", "8", "--memory", "64M", "--memory-swap", "32M", "--", "true"], "must be at least --memory"),
        (["lesson", "0"], "no stage 0"),
    ])
    func badInputIsOneLineAndNonZero(args: [String], message: String) throws {
        let root = TestEnv.root + "/bad-input-\(UUID().uuidString.prefix(8))"
        let out = try runProcess([TestEnv.clab] + args, env: ["CLAB_ROOT": root])
        #expect(out.status != 0)
        #expect(out.stderr.hasPrefix("clab: "), "\(out.stderr)")
        #expect(out.stderr.contains(message), "\(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(!out.stderr.contains("Fatal error"))
        // Refused before anything is created: not even the state directory.
        #expect(!FileManager.default.fileExists(atPath: root))
    }

    @Test func missingCommandIs127AndSaysSo() throws {
        try TestEnv.ensureImage()
        for stage in ["1", "4", "7"] {
            let out = try clab("step", stage, "--quiet", "--", "no-such-command")
            #expect(out.status == 127)
            #expect(
                out.stderr
                    == "clab: stage \(stage): command 'no-such-command' not found in the container's image (busybox: try /bin/sh, or `ls /bin`)\n"
            )
        }
    }

    @Test func exitStatusPassesThrough() throws {
        try TestEnv.ensureImage()
        #expect(try clab("step", "4", "--quiet", "--", "sh", "-c", "exit 3").status == 3)
        // Killed by a signal: 128 + the signal, as a shell reports it (stage 2: not PID 1).
        #expect(try clab("step", "2", "--quiet", "--", "sh", "-c", "kill -TERM $$").status == 128 + SIGTERM)
    }

    @Test func stdinAndStdoutPassThrough() throws {
        try TestEnv.ensureImage()
        let out = try clab("step", "5", "--quiet", "--", "tr", "a-z", "A-Z", stdin: "hello\n")
        #expect(out.stdout == "HELLO\n")
        #expect(out.stderr.isEmpty)
    }

    @Test func bannerOnStderrUnlessQuiet() throws {
        try TestEnv.ensureImage()
        let loud = try clab("step", "3", "--", "true")
        #expect(loud.stderr.contains("clab stage 3 · PID namespace"))
        #expect(loud.stderr.contains("unshare --uts --pid --fork"))
        #expect(loud.stdout.isEmpty)
        #expect(try clab("step", "3", "--quiet", "--", "true").stderr.isEmpty)
    }

    @Test func notRootIsRefused() throws {
        let out = try runProcess([
            "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TestEnv.clab, "step", "1", "--",
            "true",
        ])
        #expect(out.status == 1)
        #expect(out.stderr.contains("clab must run as root"), "\(out.stderr)")
    }

    @Test func unusableStateDirectory() throws {
        let out = try clab("step", "1", "--root", "/proc/clab-nope", "--", "true")
        #expect(out.status != 0)
        #expect(out.stderr.contains("state directory /proc/clab-nope is not usable"), "\(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: "/proc/clab-nope"))
    }

    @Test func busyboxMissing() throws {
        let root = TestEnv.root + "/no-busybox"
        let out = try clab("step", "1", "--root", root, "--", "true", env: ["CLAB_BUSYBOX": "/nonexistent/busybox"])
        #expect(out.status != 0)
        #expect(
            out.stderr
                == "clab: busybox is not installed (/nonexistent/busybox is missing): run `apt-get install busybox-static`\n"
        )
        #expect(!FileManager.default.fileExists(atPath: root + "/images/busybox"))
        #expect(
            (try? FileManager.default.contentsOfDirectory(atPath: root + "/images"))?.filter { $0 != ".lock" } == [])
    }

    @Test func dynamicBusyboxIsRefused() throws {
        let root = TestEnv.root + "/dynamic-busybox"
        let out = try clab("step", "1", "--root", root, "--", "true", env: ["CLAB_BUSYBOX": "/bin/ls"])
        #expect(out.stderr.contains("is dynamically linked"), "\(out.stderr)")
        #expect(out.status != 0)
    }

    @Test func nothingLeftAfterRuns() throws {
        try TestEnv.ensureImage()
        let root = TestEnv.root + "/clean"
        for stage in 1...7 {
            let out = try clab("step", "\(stage)", "--root", root, "--quiet", "--", "sh", "-c", "echo ok")
            #expect(out.stdout == "ok\n", "stage \(stage): \(out.stderr)")
        }
        #expect(Mounts.mounts(under: root).isEmpty)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) == [])
    }

    @Test func imageIsBuiltOnceAndListed() throws {
        try TestEnv.ensureImage()
        let out = try clab("image", "ls")
        #expect(out.status == 0)
        #expect(out.stdout.contains("busybox"))
        #expect(!out.stderr.contains("building"))
        #expect(try clab("image", "path").stdout == TestEnv.root + "/images/busybox/rootfs\n")
    }

    @Test func concurrentFirstUseBuildsOneImage() throws {
        let root = TestEnv.root + "/race"
        let outputs = DataBox()
        let threads = (0..<3).map { _ in
            Thread {
                let out = try? clab("step", "1", "--root", root, "--quiet", "--", "true")
                if out?.status != 0 { outputs.data = Data("failed: \(out?.stderr ?? "")".utf8) }
            }
        }
        for thread in threads { thread.start() }
        #expect(eventually(30) { FileManager.default.fileExists(atPath: root + "/images/busybox/image.json") })
        #expect(
            eventually(30) {
                ((try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) ?? ["x"]).isEmpty
            })
        usleep(300_000)
        #expect(String(decoding: outputs.data, as: UTF8.self) == "")
        let images = try FileManager.default.contentsOfDirectory(atPath: root + "/images").filter { $0 != ".lock" }
        #expect(images == ["busybox"])
    }
}

/// Signals and crashes: Ctrl-C reaches the container; kill -9 of clab kills the container and
/// `clab gc` removes what is left.
@Suite("signals, crashes and gc", needsRoot)
struct LifecycleTests {
    /// Starts `clab step ARGS` in its own state root and waits until its container runs.
    func startContainer(root: String, _ args: [String]) throws -> (Process, Int32) {
        try TestEnv.ensureImage()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestEnv.clab)
        // --root before "--": after it, it would be the command's.
        process.arguments = [args[0], "--root", root] + args.dropFirst()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var initPid: Int32 = 0
        let started = eventually(20) {
            let dirs = (try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) ?? []
            guard let dir = dirs.first,
                let text = try? String(contentsOfFile: root + "/run/containers/\(dir)/state.json", encoding: .utf8),
                let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                let pid = json["initPid"] as? Int
            else { return false }
            initPid = Int32(pid)
            // Running the command, not init any more.
            return (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) == "sleep\n"
        }
        #expect(started)
        return (process, initPid)
    }

    @Test func ctrlCReachesACommandThatIsNotPID1() throws {
        let root = TestEnv.root + "/sigint-1"
        let (process, initPid) = try startContainer(root: root, ["step", "1", "--quiet", "--", "sleep", "30"])
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGINT)
        #expect(!Host.isAlive(pid: initPid, startTime: nil))
    }

    @Test func ctrlCKillsAPID1ThatIgnoresIt() throws {
        let root = TestEnv.root + "/sigint-3"
        let (process, initPid) = try startContainer(root: root, ["step", "3", "--quiet", "--", "sleep", "30"])
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        // sleep as PID 1 has no SIGINT handler, so the kernel drops SIGINT; clab kills it.
        #expect(process.terminationStatus == 128 + SIGKILL)
        #expect(!Host.isAlive(pid: initPid, startTime: nil))
        #expect(Mounts.mounts(under: root).isEmpty)
    }

    @Test(arguments: [3, 7, 8])
    func killNineOfClabKillsTheContainerAndGCCleansUp(stage: Int) throws {
        let root = TestEnv.root + "/kill9-\(stage)"
        let (process, initPid) = try startContainer(root: root, ["step", "\(stage)", "--quiet", "--", "sleep", "30"])
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // PR_SET_PDEATHSIG: the container dies with clab.
        #expect(eventually { !Host.isAlive(pid: initPid, startTime: nil) })
        let leftover = (try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) ?? []
        #expect(leftover.count == 1)
        if stage == 3 {
            // No mount namespace: the container's /proc and rootfs mounts are in the host's table.
            #expect(!Mounts.mounts(under: root).isEmpty)
        }
        let first = try clab("gc", "--root", root)
        #expect(first.status == 0)
        #expect(first.stdout.contains("removed container \(leftover.first ?? "?")"), "\(first.stdout)")
        if stage == 3 { #expect(first.stdout.contains("unmounted ")) }
        if stage == 8 {
            // Its cgroups outlived it (clab could not remove them); gc does.
            #expect(
                first.stdout.contains("removed cgroup /sys/fs/cgroup/pids/clab/\(leftover.first ?? "?")"),
                "\(first.stdout)")
            #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/pids/clab/\(leftover.first ?? "?")"))
        }
        #expect(Mounts.mounts(under: root).isEmpty)
        let second = try clab("gc", "--root", root)
        #expect(second.stdout == "nothing to remove\n")
    }

    @Test func statsOfARunningContainer() throws {
        let root = TestEnv.root + "/stats"
        let (process, initPid) = try startContainer(
            root: root, ["step", "8", "--quiet", "--pids", "64", "--", "sleep", "30"])
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        let out = try clab("stats", "--root", root, "\(initPid)", "--json")
        #expect(out.status == 0, "\(out.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]]
        let counters = rows?.first?["counters"] as? [String: Any]
        #expect(counters?["memoryLimit"] as? Int == 256 << 20)
        #expect(counters?["pidsLimit"] as? Int == 64)
        #expect(counters?["pidsCurrent"] as? Int == 1)
        let table = try clab("stats", "--root", root)
        #expect(table.stdout.contains("/ 256.0 MiB"))
        #expect(table.stdout.contains("1 / 64"))
        let missing = try clab("stats", "--root", root, "nosuchid")
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no running container 'nosuchid'"))
    }

    @Test func gcLeavesLiveContainersAlone() throws {
        let root = TestEnv.root + "/gc-live"
        let (process, initPid) = try startContainer(root: root, ["step", "4", "--quiet", "--", "sleep", "30"])
        let out = try clab("gc", "--root", root)
        #expect(out.stdout == "nothing to remove\n")
        #expect(Host.isAlive(pid: initPid, startTime: nil))
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) == [])
    }
}

/// An init failure reaches the caller as one line naming the stage and the step.
@Suite("init failures", needsRoot)
struct InitFailureTests {
    @Test func missingProcDirectoryNamesTheStep() throws {
        try TestEnv.ensureImage()
        // An "image" whose /proc is a file: stage 3 cannot mount its proc there. (A missing
        // /proc is made, inside the root.)
        let image = TestEnv.root + "/broken-image-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: image + "/bin", withIntermediateDirectories: true)
        try FS.write("", to: image + "/proc")
        defer { try? FileManager.default.removeItem(atPath: image) }
        let layout = TestEnv.layout
        let id = ContainerSpec.newID()
        let spec = ContainerSpec(
            id: id, stageNumber: 4, hostname: id, imageRoot: image, bundleDir: layout.containerDir(id),
            command: ["/bin/true"], env: [], idMapping: nil)
        let container = Container(spec: spec, layout: layout, initPath: TestEnv.runtime.initPath)
        let error = #expect(throws: ClabError.self) { try container.start(stdio: (0, 1, 2)) }
        #expect(
            error?.message == "stage 3: mount -t proc proc /proc: Not a directory")
        #expect(error?.exitCode == 125)
        #expect(!FileManager.default.fileExists(atPath: spec.bundleDir))
    }
}
