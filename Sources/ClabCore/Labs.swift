import ClabKernel
import FoundationEssentials
import Glibc

/// Classroom exercises in `labs/NN-name/`: a README (front matter `lab:`, `title:`, `stages:`),
/// a reference solution and a known-bad attempt; the verifier lives in ClabChecks.
public struct Lab: Sendable {
    public let number: Int
    public let title: String
    public let stages: String
    public let directory: String
    public let readme: String

    public static func all() throws -> [Lab] {
        let dir = try Resources.shareDir() + "/labs"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        return names.compactMap { name in
            let path = dir + "/" + name
            guard let text = FS.read(path + "/README.md") else { return nil }
            let (meta, body) = Lesson.frontMatter(text)
            guard let n = meta["lab"].flatMap({ Int($0) }) else { return nil }
            return Lab(
                number: n, title: meta["title"] ?? name, stages: meta["stages"] ?? "", directory: path, readme: body)
        }
    }

    public static func numbered(_ n: Int) throws -> Lab {
        guard let lab = try all().first(where: { $0.number == n }) else {
            throw ClabError("no lab \(n): run `clab lab list` to see the labs", exitCode: 2)
        }
        return lab
    }

    /// The stages (and so the lessons) this lab proves: "1-4" or "8" or "5,6".
    public var stageNumbers: [Int] {
        stages.split(separator: ",").flatMap { part -> [Int] in
            let ends = part.split(separator: "-").compactMap { Int($0.trimmed) }
            guard let first = ends.first else { return [] }
            return Array(first...max(first, ends.last ?? first))
        }
    }

    /// The README split into the task (every section but the hints) and the hints, in order.
    /// A hint is a `## Hint N` section; it ends at the next `## ` heading.
    static func split(_ readme: String) -> (task: String, hints: [String]) {
        var task: [Substring] = []
        var hints: [[Substring]] = []
        var inHint = false
        var inFence = false
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inFence.toggle() }
            if !inFence && line.hasPrefix("## ") {
                inHint = line.hasPrefix("## Hint")
                if inHint {
                    hints.append([])
                    continue
                }
            }
            if inHint { hints[hints.count - 1].append(line) } else { task.append(line) }
        }
        func text(_ lines: [Substring]) -> String {
            lines.joined(separator: "\n").trimmed
        }
        return (text(task), hints.map(text))
    }

    /// The task without its hints: what `clab lab show` prints.
    public var task: String { Self.split(readme).task }

    /// The hints, revealed one at a time by `clab lab hint`.
    public var hints: [String] { Self.split(readme).hints }

    /// The reference solution (for teachers, and for `clab lab solution` after a confirmation).
    public var solutionPath: String { directory + "/solution.sh" }
}

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
