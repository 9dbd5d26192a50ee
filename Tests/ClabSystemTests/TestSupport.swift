import CShims
import ClabHost
import ClabImages
import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Glibc
import Testing

/// One state root for the whole test run (the image is built once, under clab's own lock),
/// in /tmp so a user-namespaced init can reach it; removed when the test process exits.
enum TestEnv {
    static let root: String = {
        let path = "/tmp/clab-tests-\(getpid())"
        mkdir(path, 0o755)
        chmod(path, 0o755)
        atexit {
            let path = "/tmp/clab-tests-\(getpid())"
            _ = Mounts.unmountAll(under: path)
            try? FileManager.default.removeItem(atPath: path)
            // The subnets this run's roots claimed host-wide, and the coordination directory
            // itself once no clab uses it (nothing active, no claim left).
            let net = "/run/clab/net"
            let fm = FileManager.default
            for claim in (try? fm.contentsOfDirectory(atPath: net + "/claims")) ?? [] {
                if FS.read(net + "/claims/" + claim)?.hasPrefix(path) == true { unlink(net + "/claims/" + claim) }
            }
            let active = (try? fm.contentsOfDirectory(atPath: net + "/active")) ?? []
            let claims = (try? fm.contentsOfDirectory(atPath: net + "/claims")) ?? []
            if active.isEmpty && claims.isEmpty && !FS.exists(net + "/ip_forward.saved") {
                rmdir(net + "/active")
                rmdir(net + "/claims")
                unlink(net + "/.lock")
                rmdir(net)
                rmdir("/run/clab")  // only if empty: a user's own state may live there
            }
        }
        return path
    }()

    static var layout: StateLayout { StateLayout.resolve(rootOption: root) }

    /// The lesson transcripts' own state directory: what they list (`clab ps`, mounts) must
    /// not include the containers other suites run at the same time.
    static var lessonRoot: String { root + "/lessons" }

    /// The clab binary that `swift build` put beside this test bundle: the init for containers
    /// started in-process, and the command for black-box tests.
    static let clab: String = {
        let dir = (Resources.executablePath() as NSString).deletingLastPathComponent
        return dir + "/clab"
    }()

    static var runtime: Runtime {
        Runtime(layout: layout, initPath: (clab as NSString).deletingLastPathComponent + "/clab-init")
    }

    static let isRoot = geteuid() == 0

    /// Builds the base image and its stage-7 copy once (idempotent, locked), so tests that compare
    /// output do not see the first-use messages.
    static func ensureImage(root: String = TestEnv.root) throws {
        let layout = StateLayout.resolve(rootOption: root)
        try layout.prepare()
        let store = ImageStore(layout: layout)
        try store.ensureBase(log: { _ in })
        _ = try store.ensureShifted(ImageStore.baseName, base: IDMapping.defaultRange.host, log: { _ in })
        for layer in try store.layers(ImageStore.baseName) {
            _ = try store.layerStore.shifted(layer, base: IDMapping.defaultRange.host)
        }
    }
}

struct Output {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Host.spawn (default signal handling, an empty mask: the test runner's threads may block
/// signals, and children inherit that) for tests. Returns posix_spawn's error number.
func spawnWithDefaultSignals(
    _ pid: inout pid_t, _ argv: [String], environment: [String: String],
    actions: UnsafePointer<posix_spawn_file_actions_t>?
) -> Int32 {
    do {
        pid = try Host.spawn(
            path: argv[0], argv: argv, environment: environment.map { "\($0.key)=\($0.value)" }, actions: actions)
        return 0
    } catch let error as SyscallError {
        return error.errno
    } catch {
        return EINVAL
    }
}

/// Runs a program to completion with the given stdin bytes; returns its exit status (128+signal
/// when killed, as a shell reports it) and outputs. posix_spawn with default signal handling
/// and an empty mask: the test runner's threads may block signals, and children inherit that.
@discardableResult
func runProcess(
    _ argv: [String], env: [String: String] = [:], stdin: String = "", cwd: String? = nil
) throws -> Output {
    // A working directory through sh: posix_spawn_file_actions_addchdir_np is not imported.
    let argv = cwd.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + argv } ?? argv
    var environment = ProcessInfo.processInfo.environment
    environment["CLAB_ROOT"] = TestEnv.root
    for (k, v) in env { environment[k] = v }
    let input = try makePipe()
    let out = try makePipe()
    let err = try makePipe()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input.read, 0)
    posix_spawn_file_actions_adddup2(&actions, out.write, 1)
    posix_spawn_file_actions_adddup2(&actions, err.write, 2)
    // Only stdio: a descriptor another test holds open at that moment (a socket, an epoll)
    // would otherwise be the child's too, and a traced corpus program would show it.
    _ = clab_spawn_closefrom(&actions, 3)
    var pid: pid_t = 0
    let rc = spawnWithDefaultSignals(&pid, argv, environment: environment, actions: &actions)
    close(input.read)
    close(out.write)
    close(err.write)
    guard rc == 0 else {
        close(input.write)
        close(out.read)
        close(err.read)
        throw SyscallError("posix_spawn \(argv[0])", errno: rc)
    }
    _ = Array(stdin.utf8).withUnsafeBytes { write(input.write, $0.baseAddress, $0.count) }
    close(input.write)
    // Read both pipes concurrently so neither can fill up and block the child.
    let errBox = DataBox()
    let errThread = Thread {
        errBox.data = readAll(err.read)
        close(err.read)
    }
    errThread.start()
    let outData = readAll(out.read)
    close(out.read)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    while !errBox.done { usleep(1000) }
    return Output(
        status: ExitStatus(raw: status).code, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errBox.data, as: UTF8.self))
}

final class DataBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _data = Data()
    private var _done = false
    var data: Data {
        get { lock.withLock { _data } }
        set {
            lock.withLock {
                _data = newValue
                _done = true
            }
        }
    }
    var done: Bool { lock.withLock { _done } }
}

func readAll(_ fd: Int32) -> Data {
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        data.append(contentsOf: buffer[0..<n])
    }
    return data
}

/// `clab ARGS...` as a user would run it.
@discardableResult
func clab(_ args: String..., stdin: String = "", env: [String: String] = [:]) throws -> Output {
    try runProcess([TestEnv.clab] + args, env: env, stdin: stdin)
}

/// Polls until `condition` holds or `seconds` pass.
func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// Tests that create namespaces and mounts need root; on CI they always have it. Off CI a
/// non-root run says why it skips.
let needsRoot = ConditionTrait.enabled(if: TestEnv.isRoot, "needs root: clab creates namespaces and mounts")

/// skopeo's argv, run so it leaves nothing on the host: as root it keeps a blob-info cache in
/// /var/lib/containers/cache whatever its flags say (containers/image), so it runs in a mount
/// namespace of its own with a tmpfs over /var/lib, as lesson 13 does.
func skopeoArgv(_ arguments: String...) -> [String] {
    [
        "/usr/bin/unshare", "--mount", "/bin/sh", "-c", "mount -t tmpfs tmpfs /var/lib && exec /usr/bin/skopeo \"$@\"",
        "skopeo",
    ]
        + arguments
}
