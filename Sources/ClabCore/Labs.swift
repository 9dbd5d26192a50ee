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
}
