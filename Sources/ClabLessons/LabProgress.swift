import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// What a student has done, per lab, in their own state root (`<root>/progress/lab-N.json`):
/// how many hints they have seen, and when the lab's verifier last passed on their work, with
/// its evidence. A lesson is done when a lab that covers its stage passed (`clab progress`).
public struct LabRecord: Codable, Sendable, Equatable {
    public var lab: Int
    public var hintsShown: Int = 0
    public var solutionShown: Bool = false
    public var attempts: Int = 0
    /// The first passing check: when, and the lines that proved it.
    public var passedAt: String?
    public var evidence: [String]?
    /// The most recent check, passing or not.
    public var lastCheckedAt: String?
    public var lastFailed: [String]?

    public init(lab: Int) { self.lab = lab }

    enum CodingKeys: String, CodingKey {
        case lab
        case hintsShown = "hints_shown"
        case solutionShown = "solution_shown"
        case attempts
        case passedAt = "passed_at"
        case evidence
        case lastCheckedAt = "last_checked_at"
        case lastFailed = "last_failed"
    }

    public var passed: Bool { passedAt != nil }
}

/// The records of one state root.
public struct LabProgress: Sendable {
    public let layout: StateLayout

    public init(layout: StateLayout) { self.layout = layout }

    public var directory: String { layout.root + "/progress" }

    func file(_ lab: Int) -> String { directory + "/lab-\(lab).json" }

    public func record(_ lab: Int) -> LabRecord {
        guard let data = FileManager.default.contents(atPath: file(lab)),
            let record = try? JSONDecoder().decode(LabRecord.self, from: data), record.lab == lab
        else { return LabRecord(lab: lab) }
        return record
    }

    /// Reads, changes and writes one lab's record (written whole, then renamed into place).
    @discardableResult
    public func update(_ lab: Int, _ change: (inout LabRecord) -> Void) throws -> LabRecord {
        do {
            try FS.makeDirectories(layout.root)
            try FS.makeDirectories(directory)
        } catch {
            throw ClabError(
                "cannot record progress in \(directory) (\(error)): run as root, or set CLAB_ROOT to a directory of yours"
            )
        }
        var record = record(lab)
        change(&record)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(record)
        let temporary = file(lab) + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data),
            rename(temporary, file(lab)) == 0
        else {
            throw ClabError(
                "cannot write \(file(lab)): run as root, or set CLAB_ROOT to a directory of yours")
        }
        return record
    }

    /// Records one run of a lab's verifier: a pass keeps its first time and evidence.
    public func recordCheck(_ lab: Int, passed: Bool, lines: [String], failed: [String]) throws -> LabRecord {
        let now = Self.timestamp()
        return try update(lab) { record in
            record.attempts += 1
            record.lastCheckedAt = now
            record.lastFailed = failed
            if passed && record.passedAt == nil {
                record.passedAt = now
                record.evidence = lines
            }
        }
    }

    /// Every lab's record, for the labs that exist.
    public func all(_ labs: [Lab]) -> [LabRecord] { labs.map { record($0.number) } }

    /// The stages whose lessons are done: those covered by a passed lab.
    public func doneStages(_ labs: [Lab]) -> Set<Int> {
        Set(labs.filter { record($0.number).passed }.flatMap(\.stageNumbers))
    }

    /// UTC, to the second: "2025-01-31T12:00:00Z".
    public static func timestamp(_ time: time_t = time(nil)) -> String { UTCTime.rfc3339(seconds: Int(time)) }
}
