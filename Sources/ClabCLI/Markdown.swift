/// Renders the markdown of a lesson for a terminal: headings, emphasis, inline code, lists,
/// quotes, links and fenced code. Only what our lessons use; anything else passes through.
enum Markdown {
    struct Style {
        let bold = "\u{1B}[1m"
        let italic = "\u{1B}[3m"
        let underline = "\u{1B}[4m"
        let dim = "\u{1B}[2m"
        let code = "\u{1B}[36m"
        let heading = "\u{1B}[1;34m"
        let reset = "\u{1B}[0m"
    }

    static func render(_ text: String) -> String {
        let s = Style()
        var out: [String] = []
        var inFence = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("```") {
                inFence.toggle()
                continue
            }
            if inFence {
                let styled = line.hasPrefix("$ ") ? s.bold + line + s.reset : s.code + line + s.reset
                out.append("    " + styled)
                continue
            }
            if let level = headingLevel(line) {
                let title = inline(String(line.dropFirst(level + 1)), s, restore: s.heading)
                let styled = s.heading + (level == 1 ? s.underline : "") + title + s.reset
                out.append(level == 1 ? styled : "\n" + styled)
            } else if line.hasPrefix("> ") {
                out.append(s.dim + "│ " + s.reset + inline(String(line.dropFirst(2)), s))
            } else if let item = listItem(line) {
                out.append(item.indent + "• " + inline(item.text, s))
            } else {
                out.append(inline(line, s))
            }
        }
        return out.joined(separator: "\n")
    }

    static func headingLevel(_ line: String) -> Int? {
        let hashes = line.prefix { $0 == "#" }.count
        guard (1...6).contains(hashes), line.dropFirst(hashes).first == " " else { return nil }
        return hashes
    }

    static func listItem(_ line: String) -> (indent: String, text: String)? {
        let indent = String(line.prefix { $0 == " " })
        let rest = line.dropFirst(indent.count)
        guard rest.hasPrefix("- ") || rest.hasPrefix("* ") else { return nil }
        return (indent + "  ", String(rest.dropFirst(2)))
    }

    /// **bold**, *em*, _em_, `code`, [text](url).
    static func inline(_ text: String, _ s: Style, restore: String = "") -> String {
        var out = ""
        var chars = Substring(text)
        let reset = s.reset + restore
        while let c = chars.first {
            if c == "`", let end = chars.dropFirst().firstIndex(of: "`") {
                out += s.code + chars[chars.index(after: chars.startIndex)..<end] + reset
                chars = chars[chars.index(after: end)...]
            } else if chars.hasPrefix("**"), let end = chars.dropFirst(2).firstRange(of: "**") {
                out +=
                    s.bold
                    + inline(
                        String(chars[chars.index(chars.startIndex, offsetBy: 2)..<end.lowerBound]), s, restore: restore)
                    + reset
                chars = chars[end.upperBound...]
            } else if c == "*" || c == "_", chars.count > 2, chars.dropFirst().first != " ",
                let end = chars.dropFirst().firstIndex(of: c), end > chars.index(after: chars.startIndex)
            {
                out += s.italic + chars[chars.index(after: chars.startIndex)..<end] + reset
                chars = chars[chars.index(after: end)...]
            } else if c == "[", let close = chars.firstIndex(of: "]"),
                chars[close...].dropFirst().first == "(", let paren = chars[close...].firstIndex(of: ")")
            {
                let label = chars[chars.index(after: chars.startIndex)..<close]
                let url = chars[chars.index(close, offsetBy: 2)..<paren]
                out += s.underline + label + reset + " (" + url + ")"
                chars = chars[chars.index(after: paren)...]
            } else {
                out.append(c)
                chars = chars.dropFirst()
            }
        }
        return out
    }
}
