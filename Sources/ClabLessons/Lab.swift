import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials

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

    /// The lab to point a lesson's reader to: of the labs covering its stage, the one that
    /// covers the fewest stages (lab 3 for lesson 3, not lab 1's stages 1-4), the first on a tie.
    public static func mostSpecific(_ labs: [Lab], covering stage: Int) -> Lab? {
        labs.filter { $0.stageNumbers.contains(stage) }.min { $0.stageNumbers.count < $1.stageNumbers.count }
    }
}
