/// A shortcut past ArgumentParser for `clab step`, the command on every timed container start
/// (bench/start.sh). ArgumentParser builds its argument tables by reflection (Mirror and
/// protocol-conformance lookups, each a scan of every conformance record in this ~40 MB static
/// binary): about 17 million instructions, three quarters of what clab does before clone3.
///
/// It takes only the plain shapes: `step N` (digits), the options below as separate tokens
/// (`--name value`, no `=`), each at most once, values that neither are empty nor start with
/// `-`, then `--` and the command. Anything else (help, `=`, a repeat, an unknown or
/// abbreviated option, a second positional, a validation failure) returns nil and the full
/// parser runs, so its answers and error messages stay the only ones. The result is the very
/// value ArgumentParser decodes: Tests/ClabTests/FastParseTests.swift compares the two field by
/// field over real argv, so an option added to StepCommand and not here fails there.
enum FastParse {
    /// Options of StepCommand (with ContainerOptions, LimitOptions, GlobalOptions) taking one value.
    static let singleValued: Set<String> = [
        "--hostname", "--image", "--name", "--net", "--userns", "--time-offset", "--memory", "--memory-swap",
        "--cpus", "--cpu-shares", "--pids", "--cgroup-parent", "--root",
    ]
    /// Repeatable options, by every name they answer to.
    static let repeatable: [String: String] = [
        "-v": "--volume", "--volume": "--volume", "-p": "--publish", "--publish": "--publish",
        "--cap-add": "--cap-add", "--cap-drop": "--cap-drop", "--security-opt": "--security-opt",
    ]
    static let flags: Set<String> = ["--quiet", "--keep", "--read-only"]

    /// The parsed `clab step`, or nil: let ArgumentParser decide.
    static func step(_ arguments: [String]) -> StepCommand? {
        guard arguments.first == "step" else { return nil }
        var stage: String?
        var single: [String: String] = [:]
        var lists: [String: [String]] = [:]
        var flagsSeen: Set<String> = []
        var command: [String] = []
        var i = 1
        while i < arguments.count {
            let token = arguments[i]
            i += 1
            if token == "--" {
                command = Array(arguments[i...])
                break
            }
            if flags.contains(token) {
                guard flagsSeen.insert(token).inserted else { return nil }
                continue
            }
            let isSingle = singleValued.contains(token)
            if isSingle || repeatable[token] != nil {
                guard i < arguments.count, !arguments[i].isEmpty, !arguments[i].hasPrefix("-") else { return nil }
                let value = arguments[i]
                i += 1
                if isSingle {
                    guard single.updateValue(value, forKey: token) == nil else { return nil }
                } else if let name = repeatable[token] {
                    lists[name, default: []].append(value)
                }
                continue
            }
            // The stage: digits, once. Anything else is the full parser's to judge.
            guard stage == nil, !token.isEmpty, token.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                return nil
            }
            stage = token
        }
        guard let stage else { return nil }

        var limits = LimitOptions()
        limits.memory = single["--memory"]
        limits.memorySwap = single["--memory-swap"]
        limits.cpus = single["--cpus"]
        limits.cpuShares = single["--cpu-shares"]
        limits.pids = single["--pids"]
        limits.cgroupParent = single["--cgroup-parent"]

        var container = ContainerOptions()
        container.hostname = single["--hostname"]
        container.limits = limits
        container.image = single["--image"]
        container.name = single["--name"]
        container.keep = flagsSeen.contains("--keep")
        container.volume = lists["--volume"] ?? []
        container.net = single["--net"]
        container.publish = lists["--publish"] ?? []
        container.capAdd = lists["--cap-add"] ?? []
        container.capDrop = lists["--cap-drop"] ?? []
        container.securityOpt = lists["--security-opt"] ?? []
        container.readOnly = flagsSeen.contains("--read-only")
        container.userns = single["--userns"]
        container.timeOffset = single["--time-offset"]

        var global = GlobalOptions()
        global.root = single["--root"]

        var step = StepCommand()
        step.stage = stage
        step.quiet = flagsSeen.contains("--quiet")
        step.container = container
        step.global = global
        step.command = command
        // What ArgumentParser runs after decoding; a failure is its to word.
        do {
            try limits.validate()
            try container.validate()
            try global.validate()
            try step.validate()
        } catch {
            return nil
        }
        return step
    }
}
