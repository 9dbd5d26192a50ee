import ClabCore
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
        }
        return path
    }()

    static var layout: StateLayout { StateLayout.resolve(rootOption: root) }

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
    static func ensureImage() throws {
        try layout.prepare()
        let store = ImageStore(layout: layout)
        try store.ensureBase(log: { _ in })
        _ = try store.ensureShifted(ImageStore.baseName, base: IDMapping.defaultRange.host, log: { _ in })
    }
}

struct Output {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs a program to completion with the given stdin bytes; returns its exit status (128+signal
/// when killed, as a shell reports it) and outputs.
@discardableResult
func runProcess(
    _ argv: [String], env: [String: String] = [:], stdin: String = "", cwd: String? = nil
) throws -> Output {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: argv[0])
    process.arguments = Array(argv.dropFirst())
    var environment = ProcessInfo.processInfo.environment
    environment["CLAB_ROOT"] = TestEnv.root
    for (k, v) in env { environment[k] = v }
    process.environment = environment
    if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    input.fileHandleForWriting.write(Data(stdin.utf8))
    try input.fileHandleForWriting.close()
    // Read both pipes concurrently so neither can fill up and block the child.
    let errBox = DataBox()
    let errThread = Thread { errBox.data = err.fileHandleForReading.readDataToEndOfFile() }
    errThread.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errBox.done { usleep(1000) }
    let status =
        process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    return Output(
        status: status, stdout: String(decoding: outData, as: UTF8.self),
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

/// `clab ARGS...` as a user would run it.
@discardableResult
func clab(_ args: String..., stdin: String = "", env: [String: String] = [:]) throws -> Output {
    try runProcess([TestEnv.clab] + args, env: env, stdin: stdin)
}

/// Mount points under the test root in the host's table: after any run this must be empty.
func leftoverMounts() -> [String] {
    Mounts.mounts(under: TestEnv.root)
}

func leftoverContainers() -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: TestEnv.layout.containersDir)) ?? []
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
