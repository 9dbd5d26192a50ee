import ClabSpec
import Testing

@Suite("lifecycle: the state machine")
struct LifecycleTableTests {
    /// Every (action, state) pair: allowed exactly where the table says, with the state it leads
    /// to; refused everywhere else with one line naming the container and its state.
    @Test func everyPairIsAllowedOrRefusedNamingTheState() throws {
        let allowed: [LifecycleAction: [LifecycleStatus: LifecycleStatus?]] = [
            .start: [.created: .running],
            .pause: [.running: .paused],
            .unpause: [.paused: .running],
            .exec: [.running: .running],
            .stop: [.created: .stopped, .running: .stopped, .paused: .stopped],
            .kill: [.running: .stopped, .paused: .stopped],
            .remove: [.created: nil, .stopped: nil],
            .forceRemove: [.created: nil, .running: nil, .paused: nil, .stopped: nil],
        ]
        for action in LifecycleAction.allCases {
            for status in LifecycleStatus.allCases {
                if let expected = allowed[action]?[status] {
                    let next = try Lifecycle.check(action, from: status, name: "web")
                    #expect(next == expected, "\(action) from \(status)")
                } else {
                    do {
                        try Lifecycle.check(action, from: status, name: "web")
                        Issue.record("\(action) from \(status) was allowed")
                    } catch {
                        #expect(error.description.contains("web"))
                        #expect(error.description.contains(status.rawValue), "\(error.description)")
                        #expect(!error.description.contains("\n"))
                    }
                }
            }
        }
    }

    @Test func eventsParseAndGiveTheState() {
        let events = EventLog.parse(
            "1000 created stage 12\n2000 started\n3000 kill signal 15\n4000 exited code=143 signal=15\n")
        #expect(events.map(\.name) == ["created", "started", "kill", "exited"])
        #expect(events[3].detail == "code=143 signal=15")
        #expect(
            events.last { EventLog.statusAfter[$0.name] != nil }.flatMap { EventLog.statusAfter[$0.name] } == .stopped)
    }
}
