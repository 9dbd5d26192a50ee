import ClabHost
import ClabLessons
import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Testing

/// A `console` block of a lesson: commands (`$ ...`) and the output each should print.
struct Transcript: CustomStringConvertible {
    let file: String
    let line: Int
    let command: String
    let expected: [String]
    /// From a ```console timing block: it measures CPU time, so it runs alone (`Timing`).
    var timing = false

    var description: String { "\(Path.basename(file)):\(line): \(command)" }

    /// Every `$ ` command in every ```console block of `text`.
    static func parse(_ text: String, file: String) -> [Transcript] {
        var result: [Transcript] = []
        var inConsole = false
        var timing = false
        var current: (line: Int, command: String, output: [String])?
        func flush() {
            if let c = current {
                result.append(
                    Transcript(file: file, line: c.line, command: c.command, expected: c.output, timing: timing))
            }
            current = nil
        }
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("```") {
                if inConsole { flush() }
                inConsole = !inConsole && line.hasPrefix("```console")
                timing = inConsole && line.split(separator: " ").contains("timing")
                continue
            }
            guard inConsole else { continue }
            if line.hasPrefix("$ ") {
                flush()
                current = (i + 1, String(line.dropFirst(2)), [])
            } else {
                current?.output.append(String(line))
            }
        }
        return result
    }

    /// Compares output lines with the expected ones: `<name>` matches any non-empty text within
    /// a line; a line `...` matches any number of lines.
    static func matches(_ actual: [String], _ expected: [String]) -> Bool {
        func lineMatches(_ a: String, _ pattern: String) -> Bool {
            var parts: [String] = []
            var literal = ""
            var i = pattern.startIndex
            while i < pattern.endIndex {
                if pattern[i] == "<", let close = pattern[i...].firstIndex(of: ">"), close > pattern.index(after: i),
                    !pattern[pattern.index(after: i)..<close].contains(" ")
                {
                    parts.append(literal)
                    literal = ""
                    i = pattern.index(after: close)
                } else {
                    literal.append(pattern[i])
                    i = pattern.index(after: i)
                }
            }
            parts.append(literal)
            if parts.count == 1 { return a == pattern }
            // Literal pieces in order, each placeholder eating at least one character.
            guard a.hasPrefix(parts[0]) else { return false }
            var rest = Substring(a.dropFirst(parts[0].count))
            for (k, piece) in parts.enumerated().dropFirst() {
                guard !rest.isEmpty else { return false }
                if k == parts.count - 1 {
                    return piece.isEmpty ? !rest.isEmpty : rest.count > piece.count && rest.hasSuffix(piece)
                }
                let searchFrom = rest.index(after: rest.startIndex)
                guard let r = rest[searchFrom...].range(of: piece) else { return false }
                rest = rest[r.upperBound...]
            }
            return true
        }
        func go(_ a: ArraySlice<String>, _ e: ArraySlice<String>) -> Bool {
            guard let first = e.first else { return a.isEmpty }
            if first == "..." {
                for k in 0...a.count where go(a.dropFirst(k), e.dropFirst()) { return true }
                return false
            }
            guard let line = a.first, lineMatches(line, first) else { return false }
            return go(a.dropFirst(), e.dropFirst())
        }
        return go(actual[...], expected[...])
    }

    /// The transcripts the parallel suite runs; `timed` are the ones that run alone.
    static var all: [Transcript] { selected.filter { !$0.timing } }
    static var timed: [Transcript] { selected.filter(\.timing) }

    /// CLAB_TRANSCRIPTS=13-lifecycle: only the blocks of the files whose path contains it.
    static var selected: [Transcript] {
        guard let only = ProcessInfo.processInfo.environment["CLAB_TRANSCRIPTS"], !only.isEmpty else {
            return everything
        }
        return everything.filter { $0.file.contains(only) }
    }

    static var everything: [Transcript] {
        guard let dir = try? Lesson.directory() else { return [] }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".md") }
        var labs: [String] = []
        if let labsDir = try? Resources.shareDir() + "/labs" {
            for lab in (try? FileManager.default.contentsOfDirectory(atPath: labsDir)) ?? [] {
                labs.append(labsDir + "/" + lab + "/README.md")
            }
        }
        return (files.sorted().map { dir + "/" + $0 } + labs).flatMap { path in
            parse((try? String(contentsOfFile: path, encoding: .utf8)) ?? "", file: path)
        }
    }
}

@Suite("transcript matcher")
struct TranscriptMatcherTests {
    @Test func placeholdersAndEllipsis() {
        #expect(Transcript.matches(["pid=1"], ["pid=<pid>"]))
        #expect(!Transcript.matches(["pid="], ["pid=<pid>"]))
        #expect(Transcript.matches(["uts:[4026532180] vs uts:[4026531838]"], ["uts:[<inode>] vs uts:[<inode>]"]))
        #expect(Transcript.matches(["a", "b", "c", "d"], ["a", "...", "d"]))
        #expect(Transcript.matches(["a", "d"], ["a", "...", "d"]))
        #expect(!Transcript.matches(["a", "b"], ["a"]))
        #expect(!Transcript.matches(["x"], ["y"]))
        #expect(Transcript.matches(["echo <not a placeholder>"], ["echo <not a placeholder>"]))
    }

    @Test func parsing() {
        let md = "text\n```console\n$ clab step 2 --quiet -- hostname\nweb\n$ true\n```\n```text\n$ skipped\n```\n"
        let t = Transcript.parse(md, file: "x.md")
        #expect(t.count == 2)
        #expect(t.first?.command == "clab step 2 --quiet -- hostname")
        #expect(t.first?.expected == ["web"])
        #expect(t.last?.expected == [])
    }
}

/// Every command a lesson shows is run, and its output compared: lessons cannot drift.
@Suite("lesson transcripts", needsRoot, .serialized)
struct LessonTranscriptTests {
    @Test(arguments: Transcript.all)
    func transcript(_ t: Transcript) throws { try Self.check(t) }

    static func check(_ t: Transcript) throws {
        try TestEnv.ensureImage(root: TestEnv.lessonRoot)
        let cwd = TestEnv.root + "/cwd-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: cwd) }
        let binDir = Path.dirname(TestEnv.clab)
        let out = try runProcess(
            ["/bin/bash", "-c", "exec 2>&1; " + t.command],
            env: [
                "PATH": "\(binDir):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "CLAB_ROOT": TestEnv.lessonRoot,
            ], cwd: cwd)
        var lines = out.stdout.split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0).replacing(/\s+$/, with: "")
        }
        if lines.last == "" { lines.removeLast() }
        let expected = t.expected.map { $0.replacing(/\s+$/, with: "") }
        #expect(
            Transcript.matches(lines, expected),
            "\(t)\n--- expected\n\(expected.joined(separator: "\n"))\n--- got\n\(lines.joined(separator: "\n"))")
    }
}

@Suite("lessons")
struct LessonCatalogueTests {
    @Test func everyStageHasALessonWithTranscripts() throws {
        let lessons = try Lesson.all()
        for stage in Stage.all {
            let lesson = lessons.first { $0.stage == stage.number }
            #expect(lesson != nil, "no lesson for stage \(stage.number)")
            #expect(lesson?.title == stage.title)
            if let lesson {
                #expect(!Transcript.parse(lesson.body, file: lesson.path).isEmpty, "\(lesson.path) has no transcript")
            }
        }
    }
}

@Suite("course map")
struct CourseMapTests {
    /// README's course map and `clab lessons` read the same numbers: the lessons' front matter.
    @Test func readmeMatchesTheLessonsFrontMatter() throws {
        let lessons = try Lesson.all()
        let readme = try String(contentsOfFile: Path.dirname(try Lesson.directory()) + "/README.md", encoding: .utf8)
        for lesson in lessons {
            let minutes = try #require(lesson.minutes, "\(lesson.path): no minutes:")
            let lab = try #require(lesson.labMinutes, "\(lesson.path): no lab-minutes:")
            let outcome = try #require(lesson.outcome, "\(lesson.path): no outcome:")
            let row =
                "| \(lesson.stage) | [\(lesson.title)](lessons/\(Path.basename(lesson.path))) | \(minutes) min | \(lab) min | \(outcome) |"
            #expect(readme.contains(row), "README.md's course map lacks: \(row)")
        }
    }
}

extension Timing {
    /// Lesson blocks that measure CPU time (```console timing): alone, no other test competing.
    @Suite("lesson transcripts that measure time", needsRoot, .serialized)
    struct TimedTranscripts {
        @Test(arguments: Transcript.timed)
        func transcript(_ t: Transcript) throws { try LessonTranscriptTests.check(t) }

        @Test func theCPUBlockOfLesson8IsTimed() {
            #expect(
                Transcript.everything.contains {
                    $0.timing && $0.file.hasSuffix("08-cgroups.md") && $0.command.contains("--cpus 0.5")
                })
        }
    }
}
