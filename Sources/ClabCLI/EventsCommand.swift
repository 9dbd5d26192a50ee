import ArgumentParser
import ClabHost
import ClabRuntime
import ClabSys

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "A container's history: every transition and signal, with its time (UTC).")

    @Argument(help: "Name, id or unique id prefix.")
    var container: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try global.layout.requireReadable()
        let record = try ContainerRecord.find(container, in: global.layout)
        for event in record.events {
            print(ShownText.oneLine(Self.utc(event.milliseconds) + "  " + pad(event.name, 9) + event.detail))
        }
        if record.status == .stopped && record.events.last?.name != "exited" && record.events.last?.name != "lost" {
            if let why = record.why, record.exitCode == nil {
                print(ShownText.oneLine("(now)                     stopped  \(why)"))
            }
        }
    }

    /// 2025-01-02T03:04:05.678Z, without a date formatter (it loads time zone files).
    static func utc(_ milliseconds: Int) -> String { UTCTime.milliseconds(milliseconds) }
}
