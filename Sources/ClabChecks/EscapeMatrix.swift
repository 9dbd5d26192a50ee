import ClabHost
import ClabImages
import ClabRuntime
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// What /usr/bin/escape (images/busybox/escape.c) said about one technique in one run:
/// `NAME open|blocked|error ERRNO|- DETAIL`.
public struct EscapeOutcome: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable { case open, blocked, error }
    public let status: Status
    /// The kernel's errno name (EPERM); nil when there was none (a masked file reads nothing).
    public let errno: String?
    public let detail: String

    public init(status: Status, errno: String?, detail: String) {
        self.status = status
        self.errno = errno
        self.detail = detail
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status, forKey: .status)
        try c.encode(errno, forKey: .errno)
        try c.encode(detail, forKey: .detail)
    }

    /// One line of `escape` output: the technique's name and its outcome.
    public static func parse(_ line: Substring) -> (name: String, outcome: EscapeOutcome)? {
        let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3, let status = Status(rawValue: String(parts[1])) else { return nil }
        let code = parts[2] == "-" ? nil : String(parts[2])
        return (
            String(parts[0]),
            EscapeOutcome(status: status, errno: code, detail: parts.count > 3 ? String(parts[3]) : "")
        )
    }

    /// The call that gave the result: the detail's first word, up to a space or "(" (escape.c
    /// starts each detail so; the rest names temporary paths).
    public var step: String { String(detail.prefix { $0 != " " && $0 != "(" }) }

    /// The same result: status, errno and the call that gave it.
    func same(_ other: EscapeOutcome?) -> Bool {
        other.map { $0.status == status && $0.errno == errno && $0.step == step } ?? false
    }
}

/// One container run: a stage and the stage-12 switches, all techniques inside.
public struct EscapeConfiguration: Sendable, Equatable {
    public let key: String
    public let title: String
    public let stage: Int
    /// Stage 12's `--userns host`: no user namespace, the hardening alone.
    public var hostUserNamespace = false
    /// `--security-opt seccomp=unconfined`.
    public var seccompUnconfined = false
    /// `--cap-add` of every capability clab holds (ALL, unless the host withholds some).
    public var allCapabilities = false

    /// The matrix's columns, in order. `host` is not a container: the techniques on the host
    /// itself, the baseline that says which cells no container defence is needed for.
    public static let columns: [EscapeConfiguration] = [
        EscapeConfiguration(key: "host", title: "host", stage: 0),
        EscapeConfiguration(key: "stage4", title: "stage 4", stage: 4),
        EscapeConfiguration(key: "stage7", title: "stage 7", stage: 7),
        EscapeConfiguration(key: "stage12", title: "stage 12", stage: 12),
        EscapeConfiguration(
            key: "stage12-userns-host", title: "stage 12 --userns host", stage: 12, hostUserNamespace: true),
    ]

    /// Runs only for attribution: each stage-12 column with seccomp off, then also every capability.
    /// What a removed layer opens, that layer stopped.
    public static let probes: [EscapeConfiguration] = columns.filter { $0.stage == 12 }.flatMap { column in
        [
            EscapeConfiguration(
                key: column.key + "-unconfined", title: column.title + " seccomp=unconfined", stage: 12,
                hostUserNamespace: column.hostUserNamespace, seccompUnconfined: true),
            EscapeConfiguration(
                key: column.key + "-unconfined-all-caps",
                title: column.title + " seccomp=unconfined --cap-add (all clab holds)",
                stage: 12, hostUserNamespace: column.hostUserNamespace, seccompUnconfined: true, allCapabilities: true),
        ]
    }
}

/// Which defence stopped a technique. Stable keys (the JSON's), short names for the table.
public enum EscapeLayer: String, Codable, Sendable, CaseIterable {
    case host  // blocked on the host too: this kernel or this machine, not a container defence
    case pidNamespace = "pid-namespace"
    case session  // no terminal: the container is a session of its own, without one
    case userNamespace = "user-namespace"
    case seccomp
    case capabilities
    case readOnlyPaths = "read-only-paths"
    case maskedPaths = "masked-paths"
    case devices  // the device allow-list (devices cgroup)
    case overlay  // the root is an overlay: no mount of the host's disk inside
    case unknown

    public var short: String {
        switch self {
        case .host: return "host"
        case .pidNamespace: return "pid ns"
        case .session: return "own session"
        case .userNamespace: return "user ns"
        case .seccomp: return "seccomp"
        case .capabilities: return "caps"
        case .readOnlyPaths: return "ro /proc"
        case .maskedPaths: return "masked"
        case .devices: return "devices"
        case .overlay: return "overlay root"
        case .unknown: return "?"
        }
    }

    public var meaning: String {
        switch self {
        case .host: return "blocked on the host as well (this kernel or machine), not by a container defence"
        case .pidNamespace: return "the pid namespace: no process outside is visible"
        case .session: return "a session of its own without a terminal (stage 4's setsid)"
        case .userNamespace: return "the user namespace: root inside holds no privilege over the host's objects"
        case .seccomp: return "the seccomp filter: removing it (seccomp=unconfined) changes the result"
        case .capabilities:
            return "the capability sets: with seccomp off, adding every capability clab holds changes the result"
        case .readOnlyPaths: return "/proc paths mounted read-only"
        case .maskedPaths: return "/proc paths masked (/dev/null bound over them)"
        case .devices: return "the device allow-list (devices cgroup): real root with CAP_MKNOD meets it"
        case .overlay:
            return "the root is an overlay (stage 9): no mount of the host's disk to decode a forged handle in"
        case .unknown: return "not attributable from these runs"
        }
    }
}

public struct EscapeCell: Codable, Sendable, Equatable {
    public let result: EscapeOutcome.Status
    public let errno: String?
    /// The layers that stopped it, outermost first (measured: see `EscapeMatrix.attribute`).
    public let layers: [EscapeLayer]
    public let detail: String

    /// Every key always present (errno null when there was none): stable JSON for scripts.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(result, forKey: .result)
        try c.encode(errno, forKey: .errno)
        try c.encode(layers, forKey: .layers)
        try c.encode(detail, forKey: .detail)
    }

    public var text: String {
        switch result {
        case .open: return "OPEN"
        case .error: return "error \(errno ?? "")".trimmed
        case .blocked:
            let layerText = layers.map(\.short).joined(separator: ", ")
            return "blocked \(errno ?? "-") (\(layerText))"
        }
    }
}

public struct EscapeRow: Codable, Sendable, Equatable {
    public let technique: String
    public let description: String
    /// By column key; absent where the technique does not apply (ptrace, kill and the runtime's
    /// binary on the host: there is no outside there).
    public let cells: [String: EscapeCell]
}

/// Known escape techniques × stages 4, 7, 12 and 12 with `--userns host` (and the host itself),
/// each cell measured by /usr/bin/escape in a real container: one container run per
/// configuration, every technique inside. Which layer stopped a technique is measured too:
/// stage 12 runs again with seccomp off, then with every capability as well.
public struct EscapeMatrix: Codable, Sendable {
    public struct Column: Codable, Sendable, Equatable {
        public let key: String
        public let title: String
    }
    public let columns: [Column]
    public let rows: [EscapeRow]
    /// Every run's raw outcomes by configuration key, the attribution runs included.
    public let runs: [String: [String: EscapeOutcome]]
    /// The seccomp filter each stage-12 run had ("unconfined" or the profile's name).
    public let seccomp: [String: String]

    public static let techniques: [(name: String, description: String)] = [
        ("mount", "mount a filesystem (tmpfs)"),
        ("unshare-mnt", "unshare a new mount namespace"),
        ("unshare-user", "unshare a new user namespace"),
        ("shocker", "open_by_handle_at with a forged handle (shocker)"),
        ("runtime-exe", "open the runtime's binary for writing (CVE-2019-5736)"),
        ("proc-sys", "write /proc/sys/kernel/core_pattern (same value)"),
        ("sysrq", "open /proc/sysrq-trigger for writing"),
        ("kcore", "read /proc/kcore"),
        ("mknod", "mknod + read the host's disk"),
        ("ptrace", "ptrace a process outside"),
        ("module", "load a kernel module (invalid image)"),
        ("keyctl", "add a key (keyrings are not namespaced)"),
        ("raw-socket", "open a raw socket"),
        ("kill", "signal a process outside (signal 0)"),
        ("tiocsti", "type into a terminal (TIOCSTI)"),
    ]

    /// Techniques about a process outside the container: not run on the host (nothing is outside).
    static let outsideOnly: Set<String> = ["runtime-exe", "ptrace", "kill"]

    /// The cells from the runs' outcomes (configuration key → technique → outcome).
    public init(
        runs: [String: [String: EscapeOutcome]], seccomp: [String: String] = [:],
        columns: [EscapeConfiguration] = EscapeConfiguration.columns
    ) {
        self.runs = runs
        self.seccomp = seccomp
        let shown = columns.filter { runs[$0.key] != nil }
        self.columns = shown.map { Column(key: $0.key, title: $0.title) }
        rows = Self.techniques.map { technique in
            var cells: [String: EscapeCell] = [:]
            for column in shown {
                guard let outcome = runs[column.key]?[technique.name] else { continue }
                cells[column.key] = EscapeCell(
                    result: outcome.status, errno: outcome.errno,
                    layers: outcome.status == .blocked
                        ? Self.attribute(technique.name, column: column.key, runs: runs) : [],
                    detail: outcome.detail)
            }
            return EscapeRow(technique: technique.name, description: technique.description, cells: cells)
        }
    }

    /// Which layers stopped `technique` in `column`, from the runs alone (no table of answers):
    /// - stage 12: a layer is named when removing it changed the result: seccomp (the run with
    ///   seccomp=unconfined), then capabilities (that run plus --cap-add ALL); what still blocks
    ///   with both gone is attributed as below.
    /// - by the errno itself where it names its cause: ESRCH for a process the pid namespace
    ///   hides, EROFS for a read-only /proc path, no errno and an empty read for a masked file,
    ///   ENXIO for no terminal.
    /// - blocked on the host itself with the same errno: the host, no container defence.
    /// - stage 12 (with its user namespace) refused as at stage 7: stage 7's layers.
    /// - stage 7 and stage 12: open at the reference without a user namespace (stage 4, resp.
    ///   stage 12 --userns host with seccomp and capabilities off), or refused there otherwise
    ///   with a permission errno → the user namespace; the same result → the reference's layers.
    /// - mknod under --userns host refused where stage 4's root got further: the device allow-list.
    /// When seccomp and a capability refuse with the same errno (Docker's capability-conditional
    /// rules: mount needs CAP_SYS_ADMIN in both), removing seccomp alone changes nothing: the
    /// capability is named.
    static func attribute(_ technique: String, column: String, runs: [String: [String: EscapeOutcome]]) -> [EscapeLayer]
    {
        guard let outcome = runs[column]?[technique], outcome.status == .blocked else { return [] }
        var layers: [EscapeLayer] = []
        var rest = outcome
        if column.hasPrefix("stage12") {
            let unconfined = runs[column + "-unconfined"]?[technique]
            let allCaps = runs[column + "-unconfined-all-caps"]?[technique]
            if let unconfined, !unconfined.same(outcome) {
                layers.append(.seccomp)
                rest = unconfined
            }
            if let allCaps, !allCaps.same(rest) {
                layers.append(.capabilities)
                rest = allCaps
            }
            if rest.status != .blocked { return layers }
        }
        if let layer = byErrno(technique, rest) { return layers + [layer] }
        if rest.same(runs["host"]?[technique]) { return layers + [.host] }
        // Stage 12 keeps stage 7's user namespace: refused as there, by what refused it there.
        if column == "stage12", let seen = runs["stage7"]?[technique], seen.same(rest) {
            return layers + attribute(technique, column: "stage7", runs: runs)
        }
        let reference: String? =
            switch column {
            case "stage7": "stage4"
            case "stage12": "stage12-userns-host-unconfined-all-caps"
            default: nil
            }
        if let reference, let seen = runs[reference]?[technique] {
            if seen.same(rest) { return layers + attribute(technique, column: reference, runs: runs) }
            // Open there, or refused later or otherwise: the user namespace refused first here.
            if seen.status == .open || ["EPERM", "EACCES", "ESTALE", "EOVERFLOW"].contains(rest.errno ?? "") {
                return layers + [.userNamespace]
            }
        }
        // The reference for stage 12 --userns host is stage 4 (real root, no hardening): a refusal of
        // mknod that root with CAP_MKNOD did not meet there is the device allow-list's.
        if column.hasPrefix("stage12-userns-host"), technique == "mknod", rest.errno == "EPERM",
            let stage4 = runs["stage4"]?["mknod"], !stage4.same(rest)
        {
            return layers + [.devices]
        }
        return layers + [.unknown]
    }

    /// Errnos that say who refused.
    static func byErrno(_ technique: String, _ outcome: EscapeOutcome) -> EscapeLayer? {
        switch outcome.errno {
        // The process is not in this pid namespace: kill and ptrace say ESRCH, its /proc/PID is missing.
        case "ESRCH" where outsideOnly.contains(technique), "ENOENT" where outsideOnly.contains(technique):
            return .pidNamespace
        case "EROFS": return .readOnlyPaths
        case "ENXIO" where technique == "tiocsti": return .session
        // A handle decoded on the overlay root (stage 9) names no inode of the host's disk.
        case "ESTALE" where technique == "shocker" && outcome.detail.contains(" on overlay,"): return .overlay
        case nil where outcome.detail.contains("masked"): return .maskedPaths
        default: return nil
        }
    }

    /// The table: techniques as rows, configurations as columns.
    public func render() -> String {
        let firstWidth = max(12, rows.map(\.technique.count).max() ?? 0)
        let texts = rows.map { row in columns.map { row.cells[$0.key]?.text ?? "-" } }
        let widths = columns.indices.map { i in max(columns[i].title.count, texts.map { $0[i].count }.max() ?? 0) }
        func pad(_ text: String, _ width: Int) -> String {
            text + String(repeating: " ", count: max(0, width - text.count))
        }
        func line(_ first: String, _ cells: [String]) -> String {
            let padded = ["  " + pad(first, firstWidth)] + cells.enumerated().map { pad($0.element, widths[$0.offset]) }
            return String(padded.joined(separator: "  ").reversed().drop { $0 == " " }.reversed())
        }
        var out = ["clab check 12 --matrix: known escape techniques, tried for real (/usr/bin/escape in the image)"]
        out.append(line("technique", columns.map(\.title)))
        for (row, cells) in zip(rows, texts) { out.append(line(row.technique, cells)) }
        let used = Set(rows.flatMap { $0.cells.values.flatMap(\.layers) })
        out.append("which layer stopped it (measured: a layer is named when removing it changed the result):")
        for layer in EscapeLayer.allCases where used.contains(layer) {
            out.append("  \(layer.short): \(layer.meaning)")
        }
        out.append("techniques: `escape list` in a container; each cell's detail: --json")
        return out.joined(separator: "\n")
    }
}

/// Runs the matrix: the host baseline (escape.c compiled for the host, the techniques that need
/// no outside) and one container per configuration.
public struct EscapeMatrixRunner {
    public let runtime: Runtime

    public init(runtime: Runtime) { self.runtime = runtime }

    public func run(log: (String) -> Void = { _ in }) throws -> EscapeMatrix {
        var runs: [String: [String: EscapeOutcome]] = [:]
        var seccomp: [String: String] = [:]
        runs["host"] = try runOnHost(log: log)
        for configuration in EscapeConfiguration.columns + EscapeConfiguration.probes where configuration.stage > 0 {
            (runs[configuration.key], seccomp[configuration.key]) = try runContainer(configuration, log: log)
        }
        return EscapeMatrix(runs: runs, seccomp: seccomp)
    }

    /// A configuration as the CLI's flags make it: `--userns host`, `--security-opt
    /// seccomp=unconfined`, `--cap-add ALL`.
    static func request(_ configuration: EscapeConfiguration, outside: pid_t) throws -> RunRequest {
        var request = RunRequest(
            stage: try Stage.numbered(configuration.stage),
            command: ["/usr/bin/escape", "--outside", "\(outside)", "all"])
        request.security.hostUserNamespace = configuration.hostUserNamespace
        if configuration.seccompUnconfined { request.security.seccomp = .unconfined }
        if configuration.allCapabilities {
            request.security.capAdd = (Host.heldCapabilities() ?? []).sorted().map(\.name)
        }
        return request
    }

    /// `escape --outside <our pid> all` in one container: our pid is outside every pid namespace,
    /// a real target for ptrace and kill (the ptrace only seizes, and the child detaches by exiting).
    func runContainer(
        _ configuration: EscapeConfiguration, log: (String) -> Void
    ) throws -> (outcomes: [String: EscapeOutcome], seccomp: String?) {
        let request = try Self.request(configuration, outside: getpid())
        try runtime.layout.prepare()
        try runtime.images.ensureBase(log: log)
        guard FS.exists(runtime.images.rootfs(ImageStore.baseName) + "/usr/bin/escape") else {
            throw ClabError(
                "the base image has no /usr/bin/escape: its sources (images/busybox/escape.c) are missing from clab's share directory"
            )
        }
        let prepared = try runtime.prepare(request, log: log)
        let pipe = try makePipe()
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if null >= 0 { close(null) } }
        let result: RunResult
        do {
            result = try runtime.run(prepared, stdio: (null, pipe.write, pipe.write))
        } catch {
            close(pipe.read)
            close(pipe.write)
            throw error
        }
        close(pipe.write)
        let output = readAll(pipe.read)
        close(pipe.read)
        let outcomes = Self.parse(output)
        guard result.status.code == 0, !outcomes.isEmpty else {
            throw ClabError(
                "escape in the \(configuration.title) container failed (status \(result.status.code)): \(output.split(separator: "\n").last ?? "no output")"
            )
        }
        return (outcomes, prepared.spec.hardening?.seccompName)
    }

    /// The host baseline: escape.c from clab's share directory, compiled into a temporary
    /// directory (never the image's binary: a container may have replaced it).
    func runOnHost(log: (String) -> Void) throws -> [String: EscapeOutcome] {
        let source = try Resources.shareDir() + "/images/busybox/escape.c"
        guard let cc = Host.which("cc") ?? Host.which("gcc") else {
            throw ClabError("no C compiler for the matrix's host column: run `apt-get install gcc libc6-dev`")
        }
        var template = Array("/tmp/clab-escape-XXXXXX".utf8CString)
        guard
            let dir = template.withUnsafeMutableBufferPointer({ $0.baseAddress.flatMap(mkdtemp) }).map({
                String(cString: $0)
            })
        else { throw SyscallError("mkdtemp /tmp/clab-escape-XXXXXX") }
        defer { try? FS.removeTree(dir) }
        let binary = dir + "/escape"
        try Host.output([cc, "-static", "-O2", "-o", binary, source])
        let names = EscapeMatrix.techniques.map(\.name).filter { !EscapeMatrix.outsideOnly.contains($0) }
        let result = try Host.run(
            [binary] + names, timeout: 120, environment: Host.toolEnvironment + ["ESCAPE_NODE_DIR=" + dir])
        guard result.status == 0 else { throw ClabError("escape on the host failed (status \(result.status))") }
        return Self.parse(result.output)
    }

    static func parse(_ output: String) -> [String: EscapeOutcome] {
        var outcomes: [String: EscapeOutcome] = [:]
        for line in output.split(separator: "\n") {
            if let (name, outcome) = EscapeOutcome.parse(line) { outcomes[name] = outcome }
        }
        return outcomes
    }

    private func readAll(_ fd: Int32) -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }
}
