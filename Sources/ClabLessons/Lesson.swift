import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials

/// The lessons in `lessons/NN-name.md`, one per stage, each opening with front matter
/// (`stage:` and `title:`); lessons after the stages say `lesson: N` instead of `stage:`.
public struct Lesson: Sendable {
    /// The stage, or for a lesson after the stages its number.
    public let stage: Int
    public let title: String
    public let path: String
    public let body: String
    /// The course map's columns, from the front matter: reading time, lab time, and what the
    /// learner can do afterwards (`minutes:`, `lab-minutes:`, `outcome:`).
    public var minutes: Int? = nil
    public var labMinutes: Int? = nil
    public var outcome: String? = nil

    /// The minutes of every lesson and lab that gives them.
    public static func totalMinutes(_ lessons: [Lesson]) -> Int {
        lessons.reduce(0) { $0 + ($1.minutes ?? 0) + ($1.labMinutes ?? 0) }
    }

    public static func directory() throws -> String { try Resources.shareDir() + "/lessons" }

    public static func all() throws -> [Lesson] {
        let dir = try directory()
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".md") }
        return files.sorted().compactMap { load(dir + "/" + $0) }
    }

    public static func numbered(_ n: Int) throws -> Lesson {
        guard let lesson = try all().first(where: { $0.stage == n }) else {
            throw ClabError("there is no lesson \(n) yet: run `clab lessons` to list them", exitCode: 2)
        }
        return lesson
    }

    /// Splits the front matter from the body.
    public static func load(_ path: String) -> Lesson? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let (meta, body) = frontMatter(text)
        // `lesson: 13`: a lesson after the stages (lifecycle, OCI), with no stage of its own.
        guard let stage = (meta["stage"] ?? meta["lesson"]).flatMap({ Int($0) }) else { return nil }
        return Lesson(
            stage: stage, title: meta["title"] ?? "", path: path, body: body,
            minutes: meta["minutes"].flatMap { Int($0) }, labMinutes: meta["lab-minutes"].flatMap { Int($0) },
            outcome: meta["outcome"])
    }

    public static func frontMatter(_ text: String) -> ([String: String], String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == "---", let end = lines.dropFirst().firstIndex(of: "---") else { return ([:], text) }
        var meta: [String: String] = [:]
        for line in lines[1..<end] {
            guard let colon = line.firstIndex(of: ":") else { continue }
            meta[line[..<colon].trimmed] = line[line.index(after: colon)...].trimmed
        }
        let body = lines[(end + 1)...].joined(separator: "\n")
        return (meta, body.hasPrefix("\n") ? String(body.dropFirst()) : body)
    }
}
