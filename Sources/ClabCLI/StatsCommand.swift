import ArgumentParser
import ClabCgroups
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Memory, CPU and pids use of running stage-8 containers against their limits.",
        discussion: "On a terminal it refreshes every second until Ctrl-C; otherwise it prints one snapshot.")

    @Argument(help: "A container id (or its start) or the host pid of its first process; default: all.")
    var container: String?

    @Flag(help: "Print one snapshot as JSON.")
    var json = false

    @OptionGroup var global: GlobalOptions

    struct Row: Codable {
        let id: String
        let pid: Int32?
        let stage: Int
        let counters: CgroupCounters
    }

    func selected() throws -> [RunningCgroup] {
        let running = ContainerState.running(in: global.layout)
        let chosen = running.filter { state in
            guard let container else { return true }
            return state.id.hasPrefix(container) || state.initPid.map(String.init) == container
        }
        if let container, chosen.isEmpty {
            throw ClabError("no running container '\(container)': `clab ps` lists them")
        }
        let withCgroups = chosen.compactMap(RunningCgroup.init)
        if let container, withCgroups.isEmpty {
            throw ClabError("container '\(container)' runs below stage 8: it has no cgroup (try `clab step 8`)")
        }
        return withCgroups
    }

    func run() throws {
        try Runtime.requireRoot()
        if json || isatty(1) == 0 {
            let rows = try selected().map {
                Row(id: $0.state.id, pid: $0.state.initPid, stage: $0.state.stage, counters: $0.cgroup.counters())
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(rows), as: UTF8.self))
            } else {
                print(Self.header)
                for row in rows { print(Self.line(row.id, row.counters, cpuPercent: nil)) }
            }
            return
        }
        // Live: redraw in place; CPU % from the usage counter's growth over each second.
        var previous: [String: (Int64, Double)] = [:]
        var drawn = 0
        while true {
            let containers = try selected()
            var lines = [Self.header]
            let now = Date().timeIntervalSince1970
            for c in containers {
                let counters = c.cgroup.counters()
                var percent: Double?
                if let usage = counters.cpuUsageNanos, let (before, at) = previous[c.state.id], now > at {
                    percent = Double(usage - before) / 1e9 / (now - at) * 100
                }
                if let usage = counters.cpuUsageNanos { previous[c.state.id] = (usage, now) }
                lines.append(Self.line(c.state.id, counters, cpuPercent: percent))
            }
            if containers.isEmpty { lines.append("(no stage-8 container running)") }
            if drawn > 0 { print("\u{1B}[\(drawn)A", terminator: "") }
            for line in lines { print("\u{1B}[2K" + line) }
            drawn = lines.count
            fflush(nil)
            if containers.isEmpty && container != nil { return }
            sleep(1)
        }
    }

    static let header = pad("CONTAINER", 14) + pad("MEMORY / LIMIT", 26) + pad("CPU", 22) + "PIDS / LIMIT"

    static func line(_ id: String, _ c: CgroupCounters, cpuPercent: Double?) -> String {
        let memory =
            (c.memoryCurrent.map(humanBytes) ?? "?") + " / " + (c.memoryLimit.map(humanBytes) ?? "none")
            + (c.oomKills.map { $0 > 0 ? " (oom_kill \($0))" : "" } ?? "")
        var cpu = c.cpuUsageNanos.map { fixed(Double($0) / 1e9, 2) + " s" } ?? "?"
        if let cpuPercent { cpu += " " + fixed(cpuPercent, 1) + "%" }
        if let quota = c.cpuQuota { cpu += " (max \(fixed(quota * 100, 0))%)" }
        let pids = (c.pidsCurrent.map(String.init) ?? "?") + " / " + (c.pidsLimit.map(String.init) ?? "none")
        return pad(id, 14) + pad(memory, 26) + pad(cpu, 22) + pids
    }
}
