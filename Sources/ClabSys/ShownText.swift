/// Text a container chose (its command, its image's file names, its init's failure) on its way
/// to the user's terminal or into a line-per-record file: control characters become visible
/// escapes, so an ESC sequence cannot drive the terminal (retitle it, clear it, answer a query
/// into its input) and a newline cannot forge another event or `clab ps` row. Docker quotes
/// `docker ps`'s command the same way (Go's strconv.Quote). `clab logs` is the one exception:
/// the container's output, passed as it is (as `docker logs` does).
public enum ShownText {
    /// C0 controls (newline and tab included), DEL and C1 controls as \n, \t, \r, \x1b, \u{9b}.
    public static func oneLine(_ text: String) -> String { escaped(text, keepingLines: false) }

    /// The same, but newlines and tabs stay (messages of several lines).
    public static func lines(_ text: String) -> String { escaped(text, keepingLines: true) }

    static func escaped(_ text: String, keepingLines: Bool) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            guard isControl(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n" where keepingLines, "\t" where keepingLines: out.unicodeScalars.append(scalar)
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x80:
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" : "") + hex
            default: out += "\\u{" + String(scalar.value, radix: 16) + "}"
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value)
    }
}
