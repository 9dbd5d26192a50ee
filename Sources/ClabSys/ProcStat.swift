/// The fields of /proc/<pid>/stat clab reads: one parser, since a pid is only trusted together
/// with its start time (pids are reused) and a zombie is not alive. The command name (field 2)
/// may hold spaces and parentheses: everything is read after its last ')'.
public struct ProcStat: Sendable, Equatable {
    /// Field 3: R, S, D, Z (zombie), X (dead), ...
    public let state: Character
    /// Field 4.
    public let parentPid: Int32
    /// Field 22, in clock ticks since boot.
    public let startTime: UInt64

    public init?(_ text: String) {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3, so field 22 is fields[19].
        guard fields.count > 19, let state = fields[0].first, let parent = Int32(fields[1]),
            let start = UInt64(fields[19])
        else { return nil }
        self.state = state
        self.parentPid = parent
        self.startTime = start
    }

    /// Neither a zombie nor dead.
    public var isLive: Bool { state != "Z" && state != "X" }
}
