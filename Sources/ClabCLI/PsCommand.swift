import ArgumentParser
import ClabRuntime
import ClabSpec
import ClabSys

struct PSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List containers: running ones, or all with -a (stopped ones say why).")

    @Flag(name: .short, help: "Only the container ids.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Also stopped containers (kept until `clab rm`).")
    var all = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try global.layout.requireReadable()
        let now = EventLog.nowMilliseconds()
        // Stopped `clab step` containers are crash leftovers (gc's business), not records.
        let records = ContainerRecord.all(in: global.layout).filter {
            $0.status != .stopped || (all && $0.isDetached)
        }
        if quiet {
            for c in records { print(c.id) }
            return
        }
        // The first five columns are as before (lessons read NAME and ADDRESS with awk).
        print(
            pad("ID", 14) + pad("STAGE", 7) + pad("PID", 9) + pad("NAME", 14) + pad("ADDRESS", 18) + pad("IMAGE", 14)
                + pad("PORTS", 16) + pad("STATUS", 26) + "COMMAND")
        for c in records {
            let running = c.status == .running || c.status == .paused || c.status == .created
            // The command is the image's or the bundle's (hostile): one row, no raw controls.
            print(
                ShownText.oneLine(
                    pad(c.id, 14) + pad("\(c.state.stage)", 7)
                        + pad(running ? c.state.initPid.map(String.init) ?? "-" : "-", 9)
                        + pad(c.state.name ?? "-", 14) + pad(running ? c.state.address ?? "-" : "-", 18)
                        + pad(c.state.detached?.image ?? "-", 14)
                        + pad(
                            c.state.detached.map { $0.ports.isEmpty ? "-" : $0.ports.joined(separator: ",") } ?? "-", 16
                        )
                        + pad(c.statusText(nowMilliseconds: now), 26) + (c.state.command ?? "")))
        }
    }
}
