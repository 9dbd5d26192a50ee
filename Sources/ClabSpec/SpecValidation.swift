import ClabSys
import Glibc

/// The rules every spec keeps before it leaves clab. Its strings come from images (ENV, CMD,
/// WORKDIR: hostile from stage 7 on), build files and the command line, and each becomes a C
/// string in init: a NUL would cut it short, and used to add records to the old wire format.
/// The checks run where that data enters (image import, build files, `-v`), in
/// `Runtime.prepare` before anything is created, and once more before the spec is sent.
extension ContainerSpec {
    /// Throws "FIELD contains a NUL byte".
    public static func checkText(_ text: String, _ field: @autoclosure () -> String) throws {
        if text.utf8.contains(0) { throw ClabError("\(field()) contains a NUL byte", exitCode: 2) }
    }

    /// An environment entry: no NUL, and NAME=VALUE with a non-empty name.
    public static func checkEnvEntry(_ entry: String, _ field: @autoclosure () -> String) throws {
        try checkText(entry, field())
        guard let eq = entry.utf8.firstIndex(of: UInt8(ascii: "=")) else {
            throw ClabError("\(field()) has no '=': environment entries are NAME=VALUE", exitCode: 2)
        }
        guard eq != entry.utf8.startIndex else {
            throw ClabError("\(field()) has an empty name: environment entries are NAME=VALUE", exitCode: 2)
        }
    }

    /// A volume's path inside the container, `.` and `..` resolved lexically (never above
    /// `/`): nil when that leaves `/` itself (`//`, `/a/..`), which a volume must not replace.
    public static func volumeTarget(_ path: String) -> String? {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == ".." {
                _ = parts.popLast()
            } else {
                parts.append(part)
            }
        }
        return parts.isEmpty ? nil : "/" + parts.joined(separator: "/")
    }

    /// Throws unless `target` is a usable volume target: absolute, no NUL, not the root.
    public static func checkVolumeTarget(_ target: String, _ field: @autoclosure () -> String) throws {
        try checkText(target, field())
        guard target.hasPrefix("/") else {
            throw ClabError("\(field()) \(target) must be an absolute path inside the container", exitCode: 2)
        }
        guard volumeTarget(target) != nil else {
            throw ClabError("\(field()) \(target) is the container's root: a volume cannot replace it", exitCode: 2)
        }
    }

    /// The most bytes of arguments and environment execve(2) takes, as the kernel computes it
    /// (fs/exec.c): a quarter of the stack limit, at most 6 MiB, at least 128 KiB. The same
    /// number `getconf ARG_MAX` prints below 24 MiB of stack. The container inherits clab's
    /// stack limit, so this is the limit its command meets.
    public static var execLimit: Int {
        var limit = rlimit()
        let stack =
            getrlimit(__rlimit_resource_t(RLIMIT_STACK.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 8 << 20
        return max(min(6 << 20, stack / 4), 128 << 10)
    }

    /// MAX_ARG_STRLEN: no single argument or environment entry may be longer (32 pages).
    public static var maxStringBytes: Int { 32 * sysconf(Int32(_SC_PAGESIZE)) }

    /// Room left in `execLimit` for the program's path, which init finds by PATH lookup inside
    /// the container and execve counts too.
    static let programPathRoom = Int(PATH_MAX)

    /// What execve will count: each string with its NUL, and a pointer to each.
    public static func execBytes(command: [String], env: [String]) -> Int {
        let strings = (command + env).reduce(0) { $0 + $1.utf8.count + 1 }
        return strings + (max(command.count, 1) + env.count) * MemoryLayout<UnsafeRawPointer>.size
    }

    /// Throws the one-line reason execve would refuse this command and environment (E2BIG),
    /// or a NUL in any of them.
    public static func checkExec(command: [String], env: [String]) throws {
        for (i, arg) in command.enumerated() {
            try checkText(arg, "argument \(i + 1) of the command")
            if arg.utf8.count + 1 > maxStringBytes {
                throw ClabError(
                    "argument \(i + 1) of the command is \(arg.utf8.count + 1) bytes; the limit for one is \(maxStringBytes) (MAX_ARG_STRLEN)",
                    exitCode: 2)
            }
        }
        for (i, entry) in env.enumerated() {
            try checkEnvEntry(entry, "environment entry \(i + 1)")
            if entry.utf8.count + 1 > maxStringBytes {
                let name = entry.prefix { $0 != "=" }.prefix(40)
                throw ClabError(
                    "environment entry \(i + 1) (\(name)) is \(entry.utf8.count + 1) bytes; the limit for one is \(maxStringBytes) (MAX_ARG_STRLEN)",
                    exitCode: 2)
            }
        }
        let total = execBytes(command: command, env: env)
        let limit = execLimit - programPathRoom
        if total > limit {
            throw ClabError(
                "the command and environment are \(total) bytes; the limit is \(limit) (ARG_MAX \(execLimit), less \(programPathRoom) for the program's path)",
                exitCode: 2)
        }
    }

    /// Every rule, on the finished spec: the last gate before it is sent to init.
    public func validate() throws {
        guard !id.isEmpty else { throw ClabError("the container id is empty") }
        for (value, field) in [(id, "the container id"), (hostname, "the hostname")] {
            try Self.checkText(value, field)
        }
        for (value, field) in [(imageRoot, "the image root"), (bundleDir, "the container directory")] {
            try Self.checkText(value, field)
            guard value.hasPrefix("/") else { throw ClabError("\(field) \(value) is not an absolute path") }
        }
        try Self.checkExec(command: command, env: env)
        for (name, dir) in cgroupMounts {
            try Self.checkText(name, "a cgroup name")
            try Self.checkText(dir, "the cgroup directory for \(name)")
        }
        if let overlay {
            for path in overlay.lowers + [overlay.upper, overlay.work] {
                try Self.checkText(path, "an overlay layer path")
                // The mount options are "lowerdir=a:b,upperdir=...": these would split them.
                if path.contains(",") || path.contains(":") {
                    throw ClabError(
                        "the overlay layer path \(path) contains ',' or ':', which overlayfs reads as separators: use a --root without them"
                    )
                }
            }
        }
        for (i, volume) in volumes.enumerated() {
            try Self.checkText(volume.source, "the source of volume \(i + 1)")
            guard volume.source.hasPrefix("/") else {
                throw ClabError("the source of volume \(i + 1), \(volume.source), is not an absolute path")
            }
            try Self.checkVolumeTarget(volume.target, "the target of volume \(i + 1)")
        }
        if let workdir { try Self.checkText(workdir, "the working directory") }
        if let oci { try oci.validate(volumes: volumes) }
        if let h = hardening {
            guard stageNumber >= 12 else {
                throw ClabError("hardening is stage 12's: this spec is stage \(stageNumber)")
            }
            for path in h.maskedPaths + h.readonlyPaths {
                try Self.checkText(path, "a masked or read-only path")
                guard path.hasPrefix("/") else {
                    throw ClabError("the masked or read-only path \(path) is not absolute")
                }
            }
            try Self.checkText(h.seccompName, "the seccomp profile's name")
            guard h.seccompFilter.count % 8 == 0, h.seccompFilter.count / 8 <= Hardening.maxFilterLength else {
                throw ClabError(
                    "the seccomp filter is \(h.seccompFilter.count) bytes: the kernel takes whole 8-byte instructions, at most \(Hardening.maxFilterLength)"
                )
            }
        }
    }
}
