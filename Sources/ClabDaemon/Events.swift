import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Glibc

/// GET /events (`docker events`): container events read from clab's own record, each
/// container's `events` file (the one `clab ps` reads), as Docker's JSON lines. Without
/// `until` it follows: inotify on the containers directory (a new container, a removal) and on
/// each events file (a new line), never a poll. Containers already removed have no file left:
/// their past events are not shown (a removal while following is a "destroy").
extension Engine {
    /// clab's event names and Docker's actions for them.
    static let eventActions: [String: String] = [
        "created": "create", "started": "start", "exited": "die", "failed": "die", "lost": "die",
        "stop": "stop", "kill": "kill", "paused": "pause", "unpaused": "unpause",
    ]

    /// Reads the queued inotify events; true if one names the containers directory's entries,
    /// a state.json or an events file (struct inotify_event: wd, mask, cookie, len, name).
    static func relevant(_ watch: Int32) -> Bool {
        var found = false
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(watch, $0.baseAddress, $0.count) }
            guard n > 0 else { return found }
            var at = 0
            while at + 16 <= n {
                let mask = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self) }
                let length = Int(buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self) })
                let bytes = buffer[(at + 16)..<min(n, at + 16 + length)].prefix { $0 != 0 }
                let name = String(decoding: bytes, as: UTF8.self)
                if mask & UInt32(IN_ISDIR) != 0 || mask & UInt32(IN_DELETE) != 0 || name == "state.json"
                    || name == EventLog.fileName
                {
                    found = true
                }
                at += 16 + length
            }
        }
    }

    func events(_ request: Request) throws -> Reply {
        func seconds(_ key: String) throws -> Double? {
            guard let text = request.query[key], !text.isEmpty else { return nil }
            guard let value = Double(text) else {
                throw APIError(.badRequest, "\(key)=\(text): give unix seconds (docker events --\(key) takes a time)")
            }
            return value
        }
        let now = Double(EventLog.nowMilliseconds()) / 1000
        let since = try seconds("since") ?? now
        let until = try seconds("until")
        // filters: {"type": [...], "container": [...], "event": [...]}; others are refused.
        var wanted: [String: [String]] = [:]
        if let text = request.query["filters"], !text.isEmpty {
            guard let filters = try? JSON.parse(Array(text.utf8)), let pairs = filters.object else {
                throw APIError(.badRequest, "filters: not a JSON object")
            }
            for (key, value) in pairs {
                guard ["type", "container", "event"].contains(key) else {
                    throw APIError(.notImplemented, "clab's daemon filters events by type, container and event only")
                }
                // {"event": {"start": true}} (the CLI's form) or ["start"].
                wanted[key] = value.object?.map(\.0) ?? value.stringList ?? []
            }
        }
        if let types = wanted["type"], !types.contains("container") { wanted["event"] = [] }
        let layout = layout
        let filters = wanted
        return .stream(contentType: "application/json") { writer in
            var offsets: [String: Int] = [:]
            var actors: [String: (name: String, image: String)] = [:]
            var watches: [Int32: String] = [:]
            let watch = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
            defer { if watch >= 0 { close(watch) } }
            if until == nil && watch >= 0 {
                _ = inotify_add_watch(
                    watch, layout.containersDir, UInt32(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_ONLYDIR))
            }
            func emit(id: String, action: String, at milliseconds: Int, detail: String) throws {
                let time = Double(milliseconds) / 1000
                guard time >= since, until.map({ time <= $0 }) ?? true else { return }
                let actor = actors[id] ?? (id, "")
                if let names = filters["container"],
                    !names.contains(where: { $0 == actor.name || id.hasPrefix($0) })
                {
                    return
                }
                if let actions = filters["event"], !actions.contains(action) { return }
                var attributes: [(String, JSON)] = [("image", .string(actor.image)), ("name", .string(actor.name))]
                if action == "die" {
                    let code = detail.split(separator: " ").first { $0.hasPrefix("code=") }.map {
                        String($0.dropFirst(5))
                    }
                    attributes.append(("exitCode", .string(code ?? "255")))
                }
                let line = JSON.object([
                    ("status", .string(action)), ("id", .string(id)), ("from", .string(actor.image)),
                    ("Type", .string("container")), ("Action", .string(action)),
                    ("Actor", .object([("ID", .string(id)), ("Attributes", .object(attributes))])),
                    // No timeNano: past 2^53 it would not survive clab's JSON numbers (doubles);
                    // the CLI then shows `time`.
                    ("scope", .string("local")), ("time", .int(milliseconds / 1000)),
                ])
                try writer.write(Array((line.text + "\n").utf8))
            }
            /// What each container's events file has gained since the last look, oldest first.
            func scan() throws {
                var lines: [(ms: Int, id: String, action: String, detail: String)] = []
                // Each container directory watched as soon as it exists (its state.json and
                // events file come after it), then looked at again: nothing written between is lost.
                if until == nil && watch >= 0 {
                    let ids = (try? FileManager.default.contentsOfDirectory(atPath: layout.containersDir)) ?? []
                    for id in ids where !watches.values.contains(id) {
                        let mask = IN_MODIFY | IN_CREATE | IN_MOVED_TO
                        let wd = inotify_add_watch(watch, layout.containerDir(id), UInt32(mask) | UInt32(IN_ONLYDIR))
                        if wd >= 0 { watches[wd] = id }
                    }
                }
                let records = ContainerRecord.all(in: layout)
                for record in records {
                    let id = record.id
                    // Read again each time: the record's image is filled in after its first line.
                    actors[id] = (record.name, record.state.detached?.image ?? "")
                    let text = FS.read(record.dir + "/" + EventLog.fileName) ?? ""
                    let bytes = Array(text.utf8)
                    // Whole lines only: one being written is read next time.
                    guard let end = bytes.lastIndex(of: 0x0a), end + 1 > (offsets[id] ?? 0) else { continue }
                    let fresh = String(decoding: bytes[(offsets[id] ?? 0)...end], as: UTF8.self)
                    offsets[id] = end + 1
                    for event in EventLog.parse(fresh) {
                        if let action = Self.eventActions[event.name] {
                            lines.append((event.milliseconds, id, action, event.detail))
                        }
                    }
                }
                // Gone only when its directory is (a state.json being rewritten reads as no record).
                for id in actors.keys where !FS.exists(layout.containerDir(id)) {
                    try emit(id: id, action: "destroy", at: EventLog.nowMilliseconds(), detail: "")
                    actors[id] = nil
                    offsets[id] = nil
                    for (wd, watched) in watches where watched == id {
                        inotify_rm_watch(watch, wd)
                        watches[wd] = nil
                    }
                }
                for line in lines.sorted(by: { $0.ms < $1.ms }) {
                    try emit(id: line.id, action: line.action, at: line.ms, detail: line.detail)
                }
            }
            // The head went out: the CLI waits for it before it shows anything.
            try writer.write([])
            try scan()
            let gone = [writer.closedFD].filter { $0 >= 0 }
            while true {
                let left = until.map { Int(($0 - Double(EventLog.nowMilliseconds()) / 1000) * 1000) } ?? -1
                if until != nil && left <= 0 { return }
                // With `until` nothing is watched: sleep to it (or the client going), then a last look.
                let watched = watch >= 0 && until == nil ? [watch] : []
                let ready = ContainerWatch.wait(for: watched + gone, milliseconds: left)
                if ready.contains(where: { gone.contains($0) }) { return }
                // Only a container directory's coming or going, a state.json or an events line
                // matter: a chatty container's log writes do not cost a scan each.
                if ready.contains(watch) && Self.relevant(watch) { try scan() }
            }
        }
    }
}
