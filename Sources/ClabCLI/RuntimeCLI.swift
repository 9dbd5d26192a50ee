import ClabHost
import ClabRuntime
import ClabSeccomp
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// `clab-runtime`: the OCI runtime command line, as runc spells it, over ClabRuntime
/// (RuntimeMode.swift). Parsed by hand, not with ArgumentParser: runc's callers put global flags
/// before the command (`--root DIR create ...`), write `--flag=value` and `-flag value` alike
/// (Go's flag package), and give `exec` a command whose own flags must pass untouched.
///
/// Errors: one line on stderr, exit 1 (runc's status for every failure), and, with `--log`, the
/// same line in the log: `{"level":"error","msg":"...","time":"..."}` with `--log-format json`,
/// which conmon reads back when a call fails.
public enum RuntimeCLI {
    public static func main() -> Never {
        if let message = CLI.invalidUTF8Argument(CommandLine.argc, CommandLine.unsafeArgv) {
            stderrLine("clab-runtime: " + message)
            exit(1)
        }
        exit(run(Array(CommandLine.arguments.dropFirst())))
    }

    static let usage = """
        clab-runtime: clab's container runtime behind the OCI runtime command line (runc's).

        usage: clab-runtime [global options] COMMAND [options] [ID] ...
          create --bundle DIR [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] ID
          start ID            state ID           kill [--all] ID [SIGNAL]     delete [--force] ID
          run --bundle DIR [-d] [--pid-file F] [--console-socket S] ID
          exec [--process F | -t -e K=V --cwd D -u UID[:GID]] [-d] [--pid-file F] [--console-socket S] ID [CMD ...]
          list [-q] [--format table|json]    ps [--format table|json] ID    pause ID    resume ID
          features            spec [--bundle DIR]
        global options: --root DIR (state, default $CLAB_ROOT or /var/lib/clab), --log FILE,
          --log-format text|json, --debug, --rootless true|false|auto, --systemd-cgroup (refused)
        """

    /// Global options, from before the command.
    struct Global {
        var root: String?
        var log: String?
        var json = false
        var debug = false
    }

    nonisolated(unsafe) static var global = Global()

    /// Runs one command line; returns the exit status.
    public static func run(_ arguments: [String]) -> Int32 {
        global = Global()
        do {
            var args = Arguments(arguments)
            try parseGlobal(&args)
            guard let command = args.next() else {
                print(usage)
                return 0
            }
            debug("\(command) \(args.rest.joined(separator: " "))")
            return try dispatch(command, &args)
        } catch let error as ClabError {
            fail(error.message)
            return 1
        } catch {
            fail("\(error)")
            return 1
        }
    }

    static func parseGlobal(_ args: inout Arguments) throws {
        while let flag = args.peekFlag() {
            switch flag.name {
            case "root": global.root = try args.value(flag)
            case "log": global.log = try args.value(flag)
            case "log-format":
                let format = try args.value(flag)
                guard format == "text" || format == "json" else {
                    throw ClabError("--log-format \(format): give text or json", exitCode: 1)
                }
                global.json = format == "json"
            case "debug": global.debug = try args.bool(flag)
            case "rootless":
                let value = flag.inline ?? args.nextValueIf { ["true", "false", "auto"].contains($0) } ?? "true"
                if value == "true" && geteuid() != 0 {
                    throw ClabError("--rootless: clab-runtime runs as root only (it maps container root to uid 100000)")
                }
                args.skip()
            case "systemd-cgroup":
                throw ClabError(
                    "--systemd-cgroup is not supported: clab makes its cgroups itself (cgroupfs), beneath its caller's cgroup; use the cgroupfs manager (podman --cgroup-manager cgroupfs)",
                    exitCode: 1)
            case "criu":
                throw ClabError("--criu: clab-runtime has no checkpoint/restore", exitCode: 1)
            case "help", "h":
                print(usage)
                exit(0)
            case "version", "v":
                print("clab-runtime version 1.0 (clab)\nspec: 1.2.0")
                exit(0)
            default:
                throw ClabError("unknown global option --\(flag.name) (see clab-runtime --help)", exitCode: 1)
            }
            if flag.name != "rootless" { args.skip() }
        }
    }

    static var layout: StateLayout {
        if let root = global.root {
            // runc's --root is the state directory; relative paths are the caller's.
            return StateLayout.resolve(rootOption: root)
        }
        return StateLayout.resolve(rootOption: nil)
    }

    static var runtime: OCIRuntime {
        OCIRuntime(layout: layout, initPath: Path.dirname(Resources.executablePath()) + "/clab-init")
    }

    static func dispatch(_ command: String, _ args: inout Arguments) throws -> Int32 {
        switch command {
        case "create":
            let (options, id) = try createOptions(&args, allowDetach: false)
            try runtime.create(id: id, options.create, note: warn)
        case "run":
            let (options, id) = try createOptions(&args, allowDetach: true)
            return try run(id: id, options)
        case "start":
            try runtime.start(id: try onlyID(&args))
        case "state":
            print(try runtime.stateJSON(id: try onlyID(&args)))
        case "kill":
            var all = false
            while let flag = args.peekFlag() {
                switch flag.name {
                case "all", "a": all = try args.bool(flag)
                default: throw unknown(flag, "kill")
                }
                args.skip()
            }
            guard let id = args.next() else { throw ClabError("kill: give the container's ID [SIGNAL]", exitCode: 1) }
            let signal = try parseSignal(args.next() ?? "SIGTERM")
            try noMore(&args, "kill")
            try runtime.kill(id: id, signal: signal, all: all)
        case "delete":
            var force = false
            while let flag = args.peekFlag() {
                switch flag.name {
                case "force", "f": force = try args.bool(flag)
                default: throw unknown(flag, "delete")
                }
                args.skip()
            }
            try runtime.delete(id: try onlyID(&args), force: force)
        case "list":
            var json = false
            var quiet = false
            while let flag = args.peekFlag() {
                switch flag.name {
                case "format", "f": json = try format(args.value(flag))
                case "quiet", "q": quiet = try args.bool(flag)
                default: throw unknown(flag, "list")
                }
                args.skip()
            }
            try noMore(&args, "list")
            print(runtime.list(json: json, quiet: quiet), terminator: "")
        case "ps":
            var json = false
            while let flag = args.peekFlag() {
                switch flag.name {
                case "format", "f": json = try format(args.value(flag))
                default: throw unknown(flag, "ps")
                }
                args.skip()
            }
            let pids = try runtime.processes(id: try onlyID(&args))
            if json {
                print("[" + pids.map(String.init).joined(separator: ",") + "]")
            } else {
                print("PID     CMD")
                for pid in pids {
                    let cmd = FS.read("/proc/\(pid)/cmdline").map { $0.split(separator: "\0").joined(separator: " ") }
                    print(ShownText.oneLine(String("\(pid)".padding(8)) + (cmd ?? "?")))
                }
            }
        case "pause":
            try runtime.pause(id: try onlyID(&args))
        case "resume":
            try runtime.resume(id: try onlyID(&args))
        case "exec":
            return try exec(&args)
        case "features":
            try noMore(&args, "features")
            print(features)
        case "spec":
            var bundle = "."
            while let flag = args.peekFlag() {
                switch flag.name {
                case "bundle", "b": bundle = try args.value(flag)
                case "rootless": _ = flag.inline ?? args.nextValueIf { ["true", "false"].contains($0) }
                default: throw unknown(flag, "spec")
                }
                args.skip()
            }
            try noMore(&args, "spec")
            try writeSpec(bundle: bundle)
        case "checkpoint", "restore", "update", "events":
            throw ClabError("\(command) is not supported by clab-runtime", exitCode: 1)
        case "help":
            print(usage)
        default:
            throw ClabError("unknown command '\(command)' (see clab-runtime --help)", exitCode: 1)
        }
        return 0
    }

    // MARK: - create and run

    struct LaunchOptions {
        var create = OCIRuntime.CreateOptions(bundle: ".")
        var detach = false
        var keep = false
    }

    static func createOptions(_ args: inout Arguments, allowDetach: Bool) throws -> (LaunchOptions, String) {
        var options = LaunchOptions()
        let command = allowDetach ? "run" : "create"
        while let flag = args.peekFlag() {
            switch flag.name {
            case "bundle", "b": options.create.bundle = try args.value(flag)
            case "pid-file": options.create.pidFile = try args.value(flag)
            case "console-socket": options.create.consoleSocket = try args.value(flag)
            // clab always pivot_roots into a fresh mount namespace (runc skips it on a ramfs root)
            // and never makes a session keyring: both are no-ops, accepted for callers that pass them.
            case "no-pivot", "no-new-keyring": _ = try args.bool(flag)
            case "detach" where allowDetach, "d" where allowDetach: options.detach = try args.bool(flag)
            case "keep" where allowDetach: options.keep = try args.bool(flag)
            case "preserve-fds":
                let n = try args.value(flag)
                guard n == "0" else {
                    throw ClabError("--preserve-fds \(n): clab-runtime passes only stdio to the container", exitCode: 1)
                }
            default: throw unknown(flag, command)
            }
            args.skip()
        }
        let id = try onlyID(&args)
        return (options, id)
    }

    /// `run`: create and start. Detached (-d) it returns at once (the caller adopts init, as after
    /// `create`); else clab-runtime waits, forwarding signals, removes the container (unless
    /// --keep) and exits with the container's status.
    static func run(id: String, _ options: LaunchOptions) throws -> Int32 {
        let runtime = runtime
        let pid = try runtime.create(id: id, options.create, note: warn)
        do {
            try runtime.start(id: id)
        } catch {
            try? runtime.delete(id: id, force: true)
            throw error
        }
        if options.detach { return 0 }
        let status = OCIRuntime.waitForChild(pid)
        if !options.keep { try runtime.delete(id: id, force: true) }
        return status
    }

    // MARK: - exec

    static func exec(_ args: inout Arguments) throws -> Int32 {
        var options = OCIRuntime.ExecOptions()
        var processFile: String?
        var env: [String] = []
        while let flag = args.peekFlag() {
            switch flag.name {
            case "process", "p": processFile = try args.value(flag)
            case "tty", "t": options.terminal = try args.bool(flag)
            case "console-socket": options.consoleSocket = try args.value(flag)
            case "pid-file": options.pidFile = try args.value(flag)
            case "detach", "d": options.detach = try args.bool(flag)
            case "cwd": options.cwd = try args.value(flag)
            case "env", "e": env.append(try args.value(flag))
            case "user", "u": options.user = try args.value(flag)
            // The exec gets the container's own hardening in clab (never more): these may only
            // ask for what it has already.
            case "no-new-privs": _ = try args.bool(flag)
            case "preserve-fds":
                let n = try args.value(flag)
                guard n == "0" else {
                    throw ClabError("--preserve-fds \(n): clab-runtime passes only stdio to the process", exitCode: 1)
                }
            default: throw unknown(flag, "exec")
            }
            args.skip()
        }
        guard let id = args.next() else { throw ClabError("exec: give the container's ID and a command", exitCode: 1) }
        if let processFile {
            try OCIRuntime.readProcessFile(processFile, into: &options)
            options.env += env
        } else {
            if args.peek == "--" { _ = args.next() }
            options.args = args.rest
            options.env = env
            args.consumeAll()
        }
        if processFile != nil { try noMore(&args, "exec --process") }
        return try runtime.exec(id: id, options)
    }

    // MARK: - features and spec

    static var features: String {
        let caps = Capability.allCases.map { "\"\($0.kernelName)\"" }.joined(separator: ", ")
        let actions = SeccompAction.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        let operators = SeccompOperator.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        let mountOptions = [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime", "loud", "mand",
            "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand", "norelatime", "nostrictatime",
            "nosuid", "private", "rbind", "relatime", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
            "shared", "silent", "slave", "strictatime", "suid", "sync", "unbindable",
        ].map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            {
              "ociVersionMin": "1.0.0",
              "ociVersionMax": "1.2.0",
              "hooks": [],
              "mountOptions": [\(mountOptions)],
              "linux": {
                "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
                "capabilities": [\(caps)],
                "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
                "seccomp": {
                  "enabled": true,
                  "actions": [\(actions)],
                  "operators": [\(operators)],
                  "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
                },
                "apparmor": {"enabled": false},
                "selinux": {"enabled": false},
                "intelRdt": {"enabled": false}
              },
              "annotations": {
                "org.clab.runtime.userns": "container root is uid 100000 on the host (65536 ids), always",
                "org.clab.runtime.cgroups": "cgroupfs, beneath the caller's cgroup; no systemd"
              }
            }
            """
    }

    /// `spec`: runc's default config.json, with the user namespace clab always gives (0 → 100000,
    /// 65536 ids) written out, so runc and crun run the bundle the same way. `rootfs/` is yours.
    static func writeSpec(bundle: String) throws {
        let path = bundle + "/config.json"
        if FS.exists(path) { throw ClabError("\(path) exists: remove it first", exitCode: 1) }
        let caps = #"["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]"#
        let map = #"[{"containerID": 0, "hostID": 100000, "size": 65536}]"#
        let text = """
            {
              "ociVersion": "1.0.2",
              "process": {
                "terminal": true,
                "user": {"uid": 0, "gid": 0},
                "args": ["sh"],
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {"bounding": \(caps), "effective": \(caps), "permitted": \(caps)},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
              },
              "root": {"path": "rootfs", "readonly": true},
              "hostname": "clab-runtime",
              "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
              ],
              "linux": {
                "uidMappings": \(map),
                "gidMappings": \(map),
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}, {"type": "cgroup"}],
                "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
              }
            }

            """
        do {
            try FS.write(text, to: path, mode: 0o644)
        } catch {
            throw ClabError("spec: \(path): \(error)", exitCode: 1)
        }
    }

    // MARK: - helpers

    static func onlyID(_ args: inout Arguments) throws -> String {
        guard let id = args.next(), !id.hasPrefix("-") else {
            throw ClabError("give the container's ID", exitCode: 1)
        }
        try noMore(&args, "this command")
        return id
    }

    static func noMore(_ args: inout Arguments, _ command: String) throws {
        if let extra = args.next() { throw ClabError("\(command): unexpected argument '\(extra)'", exitCode: 1) }
    }

    static func unknown(_ flag: Arguments.Flag, _ command: String) -> ClabError {
        ClabError("\(command): unknown option --\(flag.name) (see clab-runtime --help)", exitCode: 1)
    }

    static func format(_ value: String) throws -> Bool {
        guard value == "table" || value == "json" else {
            throw ClabError("--format \(value): give table or json", exitCode: 1)
        }
        return value == "json"
    }

    static let signalNames: [String: Int32] = [
        "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "ILL": SIGILL, "TRAP": SIGTRAP, "ABRT": SIGABRT, "IOT": SIGABRT,
        "BUS": SIGBUS, "FPE": SIGFPE, "KILL": SIGKILL, "USR1": SIGUSR1, "SEGV": SIGSEGV, "USR2": SIGUSR2,
        "PIPE": SIGPIPE, "ALRM": SIGALRM, "TERM": SIGTERM, "STKFLT": SIGSTKFLT, "CHLD": SIGCHLD, "CONT": SIGCONT,
        "STOP": SIGSTOP, "TSTP": SIGTSTP, "TTIN": SIGTTIN, "TTOU": SIGTTOU, "URG": SIGURG, "XCPU": SIGXCPU,
        "XFSZ": SIGXFSZ, "VTALRM": SIGVTALRM, "PROF": SIGPROF, "WINCH": SIGWINCH, "IO": SIGIO, "POLL": SIGIO,
        "PWR": SIGPWR, "SYS": SIGSYS,
    ]

    /// A signal as runc reads it: a number (1-64), or a name with or without SIG, any case.
    static func parseSignal(_ text: String) throws -> Int32 {
        if let n = Int32(text), n >= 1, n <= 64 { return n }
        let upper = text.uppercased()
        let bare = upper.hasPrefix("SIG") ? String(upper.dropFirst(3)) : upper
        if let n = signalNames[bare] { return n }
        if bare.hasPrefix("RTMIN+"), let k = Int32(bare.dropFirst(6)), k >= 0, 34 + k <= 64 { return 34 + k }
        if bare.hasPrefix("RTMAX-"), let k = Int32(bare.dropFirst(6)), k >= 0, 64 - k >= 34 { return 64 - k }
        throw ClabError(
            "'\(text)' is not a signal: give a number (1-64) or a name (TERM, SIGKILL, RTMIN+1)", exitCode: 1)
    }

    static func warn(_ message: String) { log("warning", message) }

    static func debug(_ message: String) {
        if global.debug { log("debug", message) }
    }

    static func fail(_ message: String) {
        stderrLine("clab-runtime: " + message)
        log("error", message)
    }

    /// One line in the --log file (appended; created 0600), as logrus writes it for runc.
    static func log(_ level: String, _ message: String) {
        guard let path = global.log else { return }
        let time = OCIRuntime.rfc3339Now()
        let line =
            global.json
            ? "{\"level\":\"\(level)\",\"msg\":\(JSONText.quoted(message)),\"time\":\"\(time)\"}\n"
            : "time=\"\(time)\" level=\(level) msg=\(JSONText.quoted(message))\n"
        // O_NOFOLLOW: root appends here; a symlink planted at the path is not followed.
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        try? FS.writeAll(fd, Array(line.utf8), what: path)
    }
}

/// argv with Go-style flags: `--name`, `-name`, `--name=value`, `--name value`.
struct Arguments {
    struct Flag {
        let name: String
        let inline: String?
    }

    private var items: [String]
    private var index = 0

    init(_ items: [String]) { self.items = items }

    var peek: String? { index < items.count ? items[index] : nil }
    var rest: [String] { Array(items[index...]) }

    /// The flag at the front, if the next argument is one (`--` ends the flags).
    func peekFlag() -> Flag? {
        guard let item = peek, item.hasPrefix("-"), item != "-", item != "--" else { return nil }
        let body = item.drop { $0 == "-" }
        if let eq = body.firstIndex(of: "=") {
            return Flag(name: String(body[..<eq]), inline: String(body[body.index(after: eq)...]))
        }
        return Flag(name: String(body), inline: nil)
    }

    mutating func next() -> String? {
        guard let item = peek else { return nil }
        index += 1
        return item
    }

    mutating func skip() { index += 1 }

    mutating func consumeAll() { index = items.count }

    /// The value of the flag at the front: inline, or the argument after it (consumed; the
    /// flag itself is consumed by the caller's `skip`).
    mutating func value(_ flag: Flag) throws -> String {
        if let inline = flag.inline { return inline }
        guard index + 1 < items.count else { throw ClabError("--\(flag.name) needs a value", exitCode: 1) }
        let value = items[index + 1]
        items.remove(at: index + 1)
        return value
    }

    /// A boolean flag: bare, or `--flag=true|false`.
    func bool(_ flag: Flag) throws -> Bool {
        guard let inline = flag.inline else { return true }
        guard inline == "true" || inline == "false" else {
            throw ClabError("--\(flag.name)=\(inline): give true or false", exitCode: 1)
        }
        return inline == "true"
    }

    /// The argument after the flag, taken only if `accept` says it is a value.
    mutating func nextValueIf(_ accept: (String) -> Bool) -> String? {
        guard index + 1 < items.count, accept(items[index + 1]) else { return nil }
        return items.remove(at: index + 1)
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
