import CShims
import ClabNetwork
import Foundation
import Glibc
import Testing

@testable import ClabHost
@testable import ClabRuntime
@testable import ClabSys

/// Round 2 of issue 13: the log's cap, -t for detached containers, names and signals without
/// races, gc after the run directory is lost, a hung-up terminal, and fds the supervisor must not keep.
@Suite("lifecycle: gaps closed", needsRoot)
struct LifecycleGapsTests {
    init() throws { try TestEnv.ensureImage() }

    func unique(_ what: String) -> String { "lg-\(what)-\(UUID().uuidString.prefix(6).lowercased())" }

    func size(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : -1
    }

    /// A container printing forever keeps at most two files of --log-max-size each, goes on
    /// running (its output is drained, not blocked), and `clab logs` prints the newest output.
    @Test func floodingContainerLogIsCapped() throws {
        let name = unique("flood")
        let run = try clab("run", "-d", "--name", name, "--log-max-size", "16k", "--", "sh", "-c", "yes flood-line")
        #expect(run.status == 0, "\(run.stderr)")
        defer { _ = try? clab("rm", "-f", name) }
        let dir = try ContainerRecord.find(name, in: TestEnv.layout).dir
        let log = dir + "/container.log"
        // Several rotations' worth of output.
        #expect(eventually { size(log + ".1") == 16 << 10 })
        usleep(500_000)
        #expect(size(log) <= 16 << 10 && size(log + ".1") <= 16 << 10, "\(size(log)) \(size(log + ".1"))")
        // (A rotation in progress shows a transient container.log.tmp: empty, or the same file.)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter {
            $0.hasPrefix("container.log") && !$0.hasSuffix(".tmp")
        }
        #expect(files.sorted() == ["container.log", "container.log.1"])
        #expect(try ContainerRecord.find(name, in: TestEnv.layout).status == .running)
        let logs = try clab("logs", name)
        #expect(logs.status == 0 && logs.stdout.utf8.count <= 32 << 10 && logs.stdout.utf8.count > 16 << 10)
        #expect(logs.stdout.hasSuffix("flood-line\n") || logs.stdout.contains("flood-line\nflood-line"))
        // The supervisor stays small while it copies.
        let supervisor = try ContainerRecord.find(name, in: TestEnv.layout).state.clabPid
        let anon = Host.status(pid: "\(supervisor)")?["RssAnon"].flatMap { Int($0.split(separator: " ")[0]) } ?? 0
        #expect(anon > 0 && anon < 1024, "RssAnon \(anon) kB")
    }

    @Test func logMaxSizeRefusals() throws {
        let small = try clab("run", "-d", "--log-max-size", "1k", "--", "true")
        #expect(small.status == 2 && small.stderr.contains("--log-max-size 1k") && small.stdout.isEmpty)
        #expect(small.stderr.split(separator: "\n").count == 1)
        let bad = try clab("run", "-d", "--log-max-size", "lots", "--", "true")
        #expect(bad.status == 2 && bad.stderr.contains("--log-max-size lots is not a size"), "\(bad.stderr)")
        let foreground = try clab("run", "--log-max-size", "1M", "--", "true")
        #expect(foreground.status == 2 && foreground.stderr.contains("use it with -d"), "\(foreground.stderr)")
    }

    /// `run -d -t`: the container's stdio is a pseudo-terminal (80×24) whose master the
    /// supervisor holds; what it prints is in `clab logs`, with a terminal's line endings.
    @Test func detachedWithTerminal() throws {
        let name = unique("tty")
        let run = try clab("run", "-d", "-t", "--name", name, "--", "sh", "-c", "tty; stty size; echo done; sleep 100")
        #expect(run.status == 0, "\(run.stderr)")
        defer { _ = try? clab("rm", "-f", name) }
        #expect(eventually { (try? clab("logs", name).stdout.contains("done\r\n")) == true })
        let logs = try clab("logs", name).stdout
        #expect(logs.hasPrefix("/dev/pts/") && logs.contains("24 80\r\n"), "\(logs)")
        let record = try ContainerRecord.find(name, in: TestEnv.layout)
        // The supervisor holds the master: /dev/ptmx among its fds.
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(record.state.clabPid)/fd")) ?? []
        #expect(fds.contains { FS.readLink("/proc/\(record.state.clabPid)/fd/\($0)") == "/dev/ptmx" }, "\(fds)")
        #expect(try clab("stop", "-t", "0", name).status == 0)
        #expect(try ContainerRecord.find(name, in: TestEnv.layout).status == .stopped)
    }

    /// Four `clab run -d --name X` at once: exactly one gets the name, the others a one-line
    /// refusal; after `rm` the name is free again.
    @Test func concurrentRunsWithOneNameOneWins() throws {
        let name = unique("race")
        let results = ResultsBox()
        let threads = (0..<4).map { _ in
            Thread {
                let out = try? clab("run", "-d", "--name", name, "--", "sleep", "100")
                results.append(out)
            }
        }
        for thread in threads { thread.start() }
        #expect(eventually(60) { results.count == 4 })
        defer {
            for id in results.all.compactMap({
                $0?.status == 0 ? $0?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : nil
            }) {
                _ = try? clab("rm", "-f", id)
            }
        }
        let outs = results.all.compactMap { $0 }
        #expect(outs.count == 4)
        #expect(outs.filter { $0.status == 0 }.count == 1, "\(outs)")
        for out in outs where out.status != 0 {
            #expect(out.stderr.contains("already named \(name)") && out.stderr.split(separator: "\n").count == 1)
        }
        let named = ContainerRecord.all(in: TestEnv.layout).filter { $0.state.name == name }
        #expect(named.count == 1)
        #expect(try clab("rm", "-f", name).status == 0)
        let again = try clab("run", "-d", "--name", name, "--", "true")
        #expect(again.status == 0, "\(again.stderr)")
        _ = try? clab("rm", "-f", name)
    }

    /// The signal helper of kill/stop/rm: a pidfd pins the process, then its start time is
    /// checked, then the signal goes through the pidfd. A process with another start time (what
    /// a reused pid looks like) gets nothing.
    @Test func signalChecksTheStartTimeThroughAPidfd() throws {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        #expect(spawnWithDefaultSignals(&pid, ["/bin/sleep", "100"], environment: [:], actions: &actions) == 0)
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        let start = try #require(Host.startTime(pid: pid))
        #expect(!ContainerRecord.signal(pid, startTime: start + 1, SIGTERM))
        #expect(errno == ESRCH)
        usleep(100_000)
        #expect(ContainerRecord.alive(pid, startTime: start), "signalled despite another start time")
        #expect(ContainerRecord.signal(pid, startTime: start, SIGTERM))
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid && clab_wtermsig(status) == SIGTERM)
        // Reaped: the pid names nobody (or someone else) now.
        #expect(!ContainerRecord.signal(pid, startTime: start, SIGKILL))
    }

    /// `clab run -d` from a shell on a terminal, then the terminal hangs up (its master closes:
    /// SIGHUP to the session): the shell dies, the container does not.
    @Test func survivesHangUpOfItsTerminal() throws {
        let name = unique("hup")
        // script(1): a new session on a new pty, the shell its session leader.
        let shell = "\(TestEnv.clab) run -d --name \(name) -- sleep 100 && echo launched && sleep 100"
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in Int32(0)...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0) }
        var environment = ProcessInfo.processInfo.environment
        environment["CLAB_ROOT"] = TestEnv.root
        #expect(
            spawnWithDefaultSignals(
                &pid, ["/usr/bin/script", "-qfec", shell, "/dev/null"], environment: environment, actions: &actions)
                == 0)
        defer { _ = try? clab("rm", "-f", name) }
        #expect(eventually(20) { (try? ContainerRecord.find(name, in: TestEnv.layout).status) == .running })
        // The shell waits in `sleep 100` on the terminal: find it, then hang the terminal up.
        let record = try ContainerRecord.find(name, in: TestEnv.layout)
        #expect(eventually { children(of: pid).first != nil })
        let sessionOfShell = try #require(children(of: pid).first)
        #expect(getsid(record.state.clabPid) != getsid(sessionOfShell), "the supervisor has a session of its own")
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(eventually { !ContainerRecord.alive(sessionOfShell, startTime: nil) }, "the shell got the hang-up")
        usleep(300_000)
        let now = try ContainerRecord.find(name, in: TestEnv.layout)
        #expect(now.status == .running, "\(now.why ?? "")")
        #expect(ContainerRecord.alive(now.state.clabPid, startTime: now.state.clabStartTime))
    }

    /// The supervisor keeps none of its caller's fds: `$(clab run -d ...)` and pipes to the CLI
    /// reach EOF when the CLI exits, not when the container does.
    @Test func callersFdsAreNotKeptByTheSupervisor() throws {
        let name = unique("fds")
        let started = Date()
        // fd 7 is a copy of stdout: a reader of stdout waits for every copy to close. fd 8 is a
        // file of the caller's, to find by name among the supervisor's fds (whose own numbers
        // may be anything).
        let marker = TestEnv.root + "/" + name + ".marker"
        let out = try runProcess([
            "/bin/sh", "-c", "exec 7>&1 8>>\(marker); \(TestEnv.clab) run -d --name \(name) -- sleep 20 >/dev/null",
        ])
        defer {
            _ = try? clab("rm", "-f", name)
            unlink(marker)
        }
        #expect(out.status == 0, "\(out.stderr)")
        #expect(Date().timeIntervalSince(started) < 10, "stdout stayed open while the container ran")
        let supervisor = try ContainerRecord.find(name, in: TestEnv.layout).state.clabPid
        let links = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(supervisor)/fd")) ?? []).compactMap
        {
            FS.readLink("/proc/\(supervisor)/fd/" + $0)
        }
        #expect(!links.isEmpty && !links.contains(marker), "\(links)")
    }

    /// A reboot-like loss of the run directory: the containers are killed and their records
    /// deleted with it. `clab gc` still finds their cgroups (by clab's naming, beneath its own
    /// cgroup, empty and not recent), the published port's rule and the state root's bridge,
    /// and removes them: nothing else.
    @Test func gcAfterRunDirectoryLoss() throws {
        let root = "/tmp/clab-lg-\(getpid())-\(UUID().uuidString.prefix(6).lowercased())"
        mkdir(root, 0o755)
        chmod(root, 0o755)
        defer {
            _ = Mounts.unmountAll(under: root)
            try? FileManager.default.removeItem(atPath: root)
        }
        let env = ["CLAB_ROOT": root]
        let port = 42000 + Int(getpid() % 1000)
        var ids: [String] = []
        for publish in [true, false] {
            let run =
                publish
                ? try runProcess(
                    [TestEnv.clab, "run", "-d", "-p", "127.0.0.1:\(port):80", "--", "sleep", "100"], env: env)
                : try runProcess([TestEnv.clab, "run", "-d", "--", "sleep", "100"], env: env)
            #expect(run.status == 0, "\(run.stderr)")
            ids.append(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let layout = StateLayout.resolve(rootOption: root)
        let records = ids.compactMap { try? ContainerRecord.find($0, in: layout) }
        #expect(records.count == 2)
        let cgroups = records.flatMap { $0.state.cgroups ?? [] }
        #expect(!cgroups.isEmpty && cgroups.allSatisfy(FS.isDirectory))
        let bridge = try #require(NetworkStore(root: root, runDir: layout.runDir).list().first?.bridge)
        #expect(FS.exists("/sys/class/net/\(bridge)"))
        #expect(try Firewall.publishedContainers().contains(ids[0]))
        // The loss: supervisors killed (their containers die with them), the run directory gone.
        for record in records {
            kill(record.state.clabPid, SIGKILL)
            #expect(
                eventually { !ContainerRecord.alive(record.state.initPid ?? 0, startTime: record.state.initStartTime) })
        }
        #expect(eventually { cgroups.allSatisfy { (FS.read($0 + "/cgroup.procs") ?? "x").isEmpty } })
        try FileManager.default.removeItem(atPath: layout.runDir)
        // Not yet: a cgroup younger than gc's grace period may be a container being started.
        let early = try runProcess([TestEnv.clab, "gc"], env: env)
        #expect(early.status == 0 && cgroups.allSatisfy(FS.isDirectory), "\(early.stdout)")
        sleep(UInt32(GarbageCollector.recentSeconds) + 1)
        let gc = try runProcess([TestEnv.clab, "gc"], env: env)
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(cgroups.allSatisfy { !FS.exists($0) }, "\(gc.stdout)")
        #expect(!FS.exists("/sys/class/net/\(bridge)"), "\(gc.stdout)")
        #expect(try !Firewall.publishedContainers().contains(ids[0]))
        // Only clab's: the caller's own cgroups are all still there.
        for line in (FS.read("/proc/self/cgroup") ?? "").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[1] == "memory" else { continue }
            #expect(FS.isDirectory("/sys/fs/cgroup/memory" + parts[2]))
        }
    }
}

/// The processes whose parent is `pid` (from /proc/<pid>/stat's fourth field).
func children(of pid: pid_t) -> [pid_t] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter {
        Host.parentPid($0) == pid
    }
}

final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Output?] = []
    func append(_ item: Output?) { lock.withLock { items.append(item) } }
    var count: Int { lock.withLock { items.count } }
    var all: [Output?] { lock.withLock { items } }
}
