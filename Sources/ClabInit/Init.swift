import CShims
import ClabSpec
import ClabSys
import Glibc

/// A failure inside the container's setup, owned by the stage that does that step, so the user
/// reads "stage 4: pivot_root: Invalid argument" even when running stage 7.
struct StageFailure: Error, CustomStringConvertible {
    let stage: Int
    let detail: String
    var exitCode: Int32 = 125

    var description: String { "stage \(stage): \(detail)" }
}

/// clab-init's half of StageMark: what init is marking now.
extension StageMark {
    /// What init is doing now: `step` restores it when a nested step ends. init is one thread.
    nonisolated(unsafe) static var current = StageMark.plumbing

    /// Says `mark` to a tracer, and remembers it (clab-init only).
    static func enter(_ mark: StageMark) {
        current = mark
        clab_mark(mark.value)
    }
}

/// Runs `body` as stage `stage`'s work: marked for the tracer (the enclosing mark comes back
/// after it, as steps nest), and with any syscall failure attributed to `stage`.
@discardableResult
func step<R>(_ stage: Int, _ body: () throws -> R) throws -> R {
    let enclosing = StageMark.current
    StageMark.enter(.stage(stage))
    defer { StageMark.enter(enclosing) }
    do {
        return try body()
    } catch let error as SyscallError {
        throw StageFailure(stage: stage, detail: error.description)
    }
}

/// The container's init: clab's own binary, executed by the cloned child inside the new
/// namespaces. It is a fresh single-threaded process, so here Swift may do the in-namespace
/// work: hostname, network, the root filesystem. Then it executes the command, which replaces it.
public enum InitProcess {
    static let syncFD: Int32 = 3

    /// The FIFO `clab-runtime start` writes "S" to (runc's exec.fifo), when init waits on it.
    static let startFIFOName = "exec.fifo"
    /// Its fd once opened; -1 when init waits on the sync socket (or not at all).
    nonisolated(unsafe) static var startFIFO: Int32 = -1

    /// `waitForStart` (`clab create`): once set up, say "C" and wait for "S" before executing.
    /// `startFIFO` (`clab-runtime create`): the same, but "S" comes on `<bundleDir>/exec.fifo`,
    /// since nothing holds the sync socket once clab-runtime has exited (there is no supervisor:
    /// the caller, conmon say, adopts init).
    public static func main(waitForStart: Bool = false, startFIFO: Bool = false) -> Never {
        _ = fcntl(syncFD, F_SETFD, FD_CLOEXEC)  // closes on exec: the parent's "started" signal
        let received: ContainerSpec?
        do {
            received = try ContainerSpec.receive(from: syncFD)
        } catch {
            report("init: \(error)", code: 125)
        }
        guard let spec = received else {
            report("init: no container spec from clab (did clab exit?)", code: 125)
        }
        if startFIFO {
            // Opened while the host's paths are still ours (before pivot_root); O_RDWR does not
            // wait for a writer, and a writer closing never reads as EOF. Closes on exec.
            let path = spec.bundleDir + "/" + startFIFOName
            Self.startFIFO = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
            if Self.startFIFO < 0 { report("init: open \(path): \(errnoDescription(errno))", code: 125) }
        }
        do {
            try setUp(spec)
            try execute(spec, waitForStart: waitForStart || startFIFO)
        } catch let failure as StageFailure {
            report(failure.description, code: failure.exitCode)
        } catch {
            report("stage \(spec.stageNumber): \(error)", code: 125)
        }
    }

    /// The in-namespace setup, stage by stage.
    static func setUp(_ spec: ContainerSpec) throws {
        let stage = spec.stage
        StageMark.enter(.plumbing)
        if stage.has(.uts) { try UTSStage.setHostname(spec.hostname) }
        if let domain = spec.oci?.domainname, !domain.isEmpty {
            try step(2) {
                try check(domain.withCString { setdomainname($0, strlen($0)) }, "setdomainname \"\(domain)\"")
            }
        }
        // With the host's or another container's network namespace, lo is already up, and not ours.
        if stage.has(.net) && spec.network == .own { try NetworkStage.bringUpLoopback() }
        if stage.has(.mnt) {
            try MountStage.pivotIntoImage(spec)
            if let oci = spec.oci { try BundleMounts.afterPivot(oci) }
            if let workdir = spec.workdir { try OverlayStage.enterWorkdir(workdir) }
            if let hardening = spec.hardening {
                try HardeningStage.secureFilesystem(hardening)
                if spec.oci?.readOnlyRoot == true { try BundleMounts.readOnlyRoot() }
                try HardeningStage.enterNamespaces(hardening)
                // Again, through the masks and read-only binds: a WORKDIR under /proc would
                // otherwise keep the writable mount beneath them as the working directory.
                if let workdir = spec.workdir { try step(12) { try check(chdir(workdir), "chdir \(workdir)") } }
            }
            if let oci = spec.oci { try BundleMounts.setRootPropagation(oci) }
        } else if stage.has(.pid) {
            try PIDStage.chrootWithOwnProc(spec)
        } else {
            try ChrootStage.enter(spec.imageRoot)
        }
    }

    /// execve the command, looked up in the container's PATH. A missing command is exit 127 and
    /// an unrunnable one 126, as a shell does.
    static func execute(_ spec: ContainerSpec, waitForStart: Bool = false) throws -> Never {
        guard let name = spec.command.first else {
            throw StageFailure(stage: spec.stageNumber, detail: "no command to run")
        }
        StageMark.enter(.commandLookup)
        let path = ContainerPath.resolve(name, env: spec.env)
        guard let path else {
            throw StageFailure(
                stage: spec.stageNumber,
                detail: "command '\(name)' not found in the container's image (busybox: try /bin/sh, or `ls /bin`)",
                exitCode: 127)
        }
        // The OCI create/start split (runc's exec.fifo): everything is in place, the command
        // not yet running. The supervisor passes `clab start`'s "S" on; EOF means it is gone.
        // Before the lock-down, as runc waits before its last seccomp step: a profile that
        // refuses send or recv must not strand a created container.
        if waitForStart {
            StageMark.enter(.plumbing)
            var byte = SyncMessage.created
            _ = send(syncFD, &byte, 1, Int32(MSG_NOSIGNAL))
            var n: Int
            if startFIFO >= 0 {
                // Kept open until execve closes it: `clab-runtime start` waits for that (the
                // FIFO then has no reader) before it runs the poststart hooks.
                repeat { n = read(startFIFO, &byte, 1) } while n < 0 && errno == EINTR
            } else {
                repeat { n = recv(syncFD, &byte, 1, 0) } while n < 0 && errno == EINTR
            }
            if n != 1 || byte != SyncMessage.start { exit(125) }
        }
        // An OCI bundle's startContainer hooks: in the container, before its process (and
        // before the lock-down, so a hook runs with the container root's full set).
        if let oci = spec.oci, !oci.hooks.startContainer.isEmpty {
            try step(12) {
                try OCIHooks.runInContainer(
                    oci.hooks.startContainer, phase: .startContainer, state: oci.hookState(status: "created"))
            }
        }
        if let hardening = spec.hardening { try HardeningStage.lockDown(hardening, oci: spec.oci) }
        StageMark.enter(.execute)
        _ = withCStrings(spec.command) { argv in
            withCStrings(spec.env) { envp in execve(path, argv, envp) }
        }
        let err = errno
        throw StageFailure(
            stage: spec.stageNumber, detail: "execve \(path): \(errnoDescription(err))",
            exitCode: err == ENOENT ? 127 : 126)
    }

    static func report(_ message: String, code: Int32) -> Never {
        let bytes = InitReport.encode(message)
        let sent = bytes.withUnsafeBytes { send(syncFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // After `clab-runtime start` nobody reads the sync socket: the caller reads our stderr.
        if sent < 0 {
            let line = Array(("clab-init: " + message + "\n").utf8)
            _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
        exit(code)
    }
}

/// PATH lookup as the container sees it (we are already inside its root).
enum ContainerPath {
    static func resolve(_ name: String, env: [String]) -> String? {
        if name.contains("/") { return FS.exists(name) ? name : nil }
        let path = env.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? ContainerSpec.defaultPath
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { return candidate }
        }
        return nil
    }
}
