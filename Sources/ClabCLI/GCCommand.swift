import ArgumentParser
import ClabRuntime

struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Remove what crashed or killed runs left behind (mounts, state directories).")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        let report = GarbageCollector(layout: global.layout).collect()
        if report.isEmpty && report.skippedRecent.isEmpty {
            print("nothing to remove")
            return
        }
        for mount in report.mounts { print("unmounted \(mount)") }
        for id in report.containers { print("removed container \(id)") }
        for dir in report.tempDirs { print("removed half-built image \(dir)") }
        for dir in report.cgroups { print("removed cgroup \(dir)") }
        for lease in report.leases { print("released address \(lease)") }
        for id in report.reconciled {
            print(
                "reconciled container \(id): its supervisor is gone; host side removed, record kept (`clab rm \(id)`)")
        }
        for bridge in report.orphanedBridges {
            print("removed bridge \(bridge) and its rules (its state root is gone)")
        }
        if !report.skippedRecent.isEmpty {
            let n = report.skippedRecent.count
            print(
                "skipped \(n) container director\(n == 1 ? "y" : "ies") younger than \(GarbageCollector.recentSeconds) s with no state file yet (\(report.skippedRecent.joined(separator: ", "))): a clab may be starting \(n == 1 ? "it" : "them"); run `clab gc` again in \(GarbageCollector.recentSeconds) s"
            )
        }
    }
}
