/// A shortcut past ArgumentParser for `clab step`, the command on every timed container start
/// (bench/start.sh). ArgumentParser builds its argument tables by reflection (Mirror and
/// protocol-conformance lookups, each a scan of every conformance record in this ~40 MB static
/// binary): about 17 million instructions, three quarters of what clab does before clone3.
///
/// It takes only the plain shapes: `step N` (digits), the options below as separate tokens
/// (`--name value`, no `=`), each at most once, values that neither are empty nor start with
/// `-`, then `--` and the command. Anything else (help, `=`, a repeat, an unknown or
/// abbreviated option, a second positional, a validation failure) returns nil and the full
/// parser runs, so its answers and error messages stay the only ones; an option this does not
/// know makes it decline. The result equals what ArgumentParser decodes (StepCommand.plain):
/// Tests/ClabCLITests/FastParseTests.swift compares the two field by field over real argv.
enum FastParse {
    /// The parsed `clab step`, or nil: let ArgumentParser decide. Plain strings and a switch:
    /// no Set, Dictionary or ArgumentParser wrapper, each of which costs runtime type lookups
    /// the first time a process uses it.
    static func step(_ arguments: [String]) -> StepRequest? {
        guard arguments.first == "step" else { return nil }
        var stage: String?
        var hostname: String?
        var image: String?
        var name: String?
        var net: String?
        var userns: String?
        var timeOffset: String?
        var limits = LimitArguments()
        var root: String?
        var volume: [String] = []
        var publish: [String] = []
        var capAdd: [String] = []
        var capDrop: [String] = []
        var securityOpt: [String] = []
        var quiet = false
        var keep = false
        var readOnly = false
        var command: [String] = []
        var i = 1
        /// The option's value: the next argument, neither empty nor starting with `-`.
        func value() -> String? {
            guard i < arguments.count, !arguments[i].isEmpty, !arguments[i].hasPrefix("-") else { return nil }
            i += 1
            return arguments[i - 1]
        }
        /// A single-valued option, given once.
        func once(_ slot: inout String?) -> Bool {
            guard slot == nil, let v = value() else { return false }
            slot = v
            return true
        }
        func append(_ list: inout [String]) -> Bool {
            guard let v = value() else { return false }
            list.append(v)
            return true
        }
        func flag(_ seen: inout Bool) -> Bool {
            guard !seen else { return false }
            seen = true
            return true
        }
        scan: while i < arguments.count {
            let token = arguments[i]
            i += 1
            let ok: Bool
            switch token {
            case "--":
                command = Array(arguments[i...])
                break scan
            case "--quiet": ok = flag(&quiet)
            case "--keep": ok = flag(&keep)
            case "--read-only": ok = flag(&readOnly)
            case "--hostname": ok = once(&hostname)
            case "--image": ok = once(&image)
            case "--name": ok = once(&name)
            case "--net": ok = once(&net)
            case "--userns": ok = once(&userns)
            case "--time-offset": ok = once(&timeOffset)
            case "--memory": ok = once(&limits.memory)
            case "--memory-swap": ok = once(&limits.memorySwap)
            case "--cpus": ok = once(&limits.cpus)
            case "--cpu-shares": ok = once(&limits.cpuShares)
            case "--pids": ok = once(&limits.pids)
            case "--cgroup-parent": ok = once(&limits.cgroupParent)
            case "--root": ok = once(&root)
            case "-v", "--volume": ok = append(&volume)
            case "-p", "--publish": ok = append(&publish)
            case "--cap-add": ok = append(&capAdd)
            case "--cap-drop": ok = append(&capDrop)
            case "--security-opt": ok = append(&securityOpt)
            default:
                // The stage: digits, once. Anything else is the full parser's to judge.
                ok = stage == nil && !token.isEmpty && token.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
                if ok { stage = token }
            }
            guard ok else { return nil }
        }
        // GlobalOptions.validate refuses only an empty --root, which value() already declined.
        guard let stage else { return nil }
        let container = ContainerArguments(
            hostname: hostname, limits: limits, image: image, name: name, keep: keep, volume: volume, net: net,
            publish: publish, capAdd: capAdd, capDrop: capDrop, securityOpt: securityOpt, readOnly: readOnly,
            userns: userns, timeOffset: timeOffset)
        return StepRequest(stage: stage, quiet: quiet, container: container, root: root, command: command)
    }
}
