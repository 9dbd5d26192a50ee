import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// Facts about the host and helpers to run host tools (used at image build, never in the
/// hot path of starting a container).
public enum Host {
    public static func which(_ name: String) -> String? {
        let path = Env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Runs a tool and returns its stdout; a failure throws with its output's last line.
    @discardableResult
    public static func output(_ argv: [String]) throws -> String {
        let result = try run(argv)
        guard result.status == 0 else {
            let last = result.output.split(separator: "\n").last.map(String.init) ?? ""
            throw ClabError("\(argv.joined(separator: " ")) failed (status \(result.status)): \(last)")
        }
        return result.output
    }

    /// The environment host tools run with: a fixed PATH of the system's directories.
    public static let toolEnvironment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

    /// Runs a tool with stdin from /dev/null; returns its exit status and its stdout and
    /// stderr together. (posix_spawn: Foundation's Process is not in FoundationEssentials.)
    /// With `timeout` (seconds) the tool is killed then, and the status is 124, as timeout(1) says.
    public static func run(
        _ argv: [String], timeout: Int32? = nil, environment: [String] = toolEnvironment
    ) throws -> (status: Int32, output: String) {
        let path = argv[0].hasPrefix("/") ? argv[0] : (which(argv[0]) ?? argv[0])
        let (readEnd, writeEnd) = try makePipe()
        defer { close(readEnd) }
        let pid = try spawn(
            path: path, argv: argv, environment: environment,
            fds: [.open("/dev/null", flags: O_RDONLY), .fd(writeEnd), .fd(writeEnd)], closing: writeEnd)
        let (output, timedOut) = readAll(readEnd, timeout: timeout) {
            kill(pid, SIGKILL)  // our own child, by pid
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = output
        if timedOut {
            return (124, text + "\n\(Path.basename(argv[0])) did not finish within \(timeout ?? 0) s")
        }
        return (ExitStatus(raw: status).code, text)
    }

    /// Reads `fd` to its end, as text. With `timeout` (seconds), gives up then: `onTimeout` runs
    /// (it kills the writer) and `timedOut` is true.
    public static func readAll(_ fd: Int32, timeout: Int32?, onTimeout: () -> Void) -> (
        output: String, timedOut: Bool
    ) {
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += Int(timeout ?? 0)
        while true {
            if timeout != nil {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let left = (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1_000_000
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = left > 0 ? poll(&pfd, 1, Int32(left)) : 0
                if ready < 0 && errno == EINTR { continue }
                if ready <= 0 {
                    onTimeout()
                    return (String(decoding: output, as: UTF8.self), true)
                }
            }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output += buffer[0..<n]
        }
        return (String(decoding: output, as: UTF8.self), false)
    }

    /// Users to whom /etc/subuid or /etc/subgid ("name:start:count" lines) give ids in clab's
    /// mapped range: with newuidmap they can become those ids, the container's root, on the host.
    public static func subordinateOwners(
        overlapping mapping: IDMapping, files: [String] = ["/etc/subuid", "/etc/subgid"]
    ) -> [String] {
        var owners: [String] = []
        let low = UInt64(mapping.host)
        let high = low + UInt64(mapping.count)
        for file in files {
            for line in (FS.read(file) ?? "").split(separator: "\n") {
                let parts = line.split(separator: ":")
                guard parts.count == 3, let start = UInt64(parts[1]), let count = UInt64(parts[2]), count > 0 else {
                    continue
                }
                if start < high && low < start + count && !owners.contains(String(parts[0])) {
                    owners.append(String(parts[0]))
                }
            }
        }
        return owners
    }

    public static var hostname: String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count)
        return cString(buf)
    }

    /// The inode that names a namespace: readlink /proc/<pid>/ns/<kind> -> "uts:[4026531838]".
    public static func namespaceID(pid: String = "self", _ ns: Namespace) -> String? {
        FS.readLink("/proc/\(pid)/ns/\(ns.rawValue)")
    }

    /// The "Key:\tvalue" lines of /proc/<pid>/status ("self" for clab), values trimmed; nil when
    /// the process is gone.
    public static func status(pid: String) -> [String: String]? {
        guard let text = FS.read("/proc/\(pid)/status") else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmed
        }
        return fields
    }

    /// The capabilities in clab's own bounding set: all that root without a user namespace can
    /// hold (a machine may withhold some from its root, and capset cannot grant those). nil when
    /// /proc/self/status cannot be read.
    public static func heldCapabilities() -> Set<Capability>? {
        status(pid: "self")?["CapBnd"].flatMap { UInt64($0, radix: 16) }.map(Capability.set(fromMask:))
    }

    /// Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot.
    /// A pid plus its start time names a process even after pid reuse.
    public static func startTime(pid: Int32) -> UInt64? {
        FS.read("/proc/\(pid)/stat").flatMap(ProcStat.init)?.startTime
    }

    /// Field 4 of /proc/<pid>/stat: the parent's pid.
    public static func parentPid(_ pid: Int32) -> Int32? {
        FS.read("/proc/\(pid)/stat").flatMap(ProcStat.init)?.parentPid
    }

    public static func isAlive(pid: Int32, startTime: UInt64?) -> Bool {
        guard let now = Host.startTime(pid: pid) else { return false }
        return startTime == nil || startTime == now
    }

    /// Whether this kernel lets us make user namespaces (a missing CONFIG_USER_NS, or a
    /// sysctl that forbids them, shows here).
    /// `proc` is a directory laid out like /proc (tests pass a fake one).
    public static func userNamespacesAvailable(proc: String = "/proc") -> String? {
        guard FS.exists(proc + "/self/ns/user") else { return "this kernel has no user namespaces (CONFIG_USER_NS)" }
        if let max = FS.read(proc + "/sys/user/max_user_namespaces"),
            Int(max.trimmed) == 0
        {
            return "user namespaces are disabled (sysctl user.max_user_namespaces = 0)"
        }
        if let clone = FS.read(proc + "/sys/kernel/unprivileged_userns_clone"), clone.hasPrefix("0"), geteuid() != 0 {
            return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"
        }
        return nil
    }
}
