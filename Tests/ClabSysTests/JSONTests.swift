import ClabSys
import Testing

/// ClabSys's JSON: the one reader behind the Engine API's bodies, config.json and seccomp
/// profiles, and the one writer of API responses and `clab bundle`'s config.json.
@Suite("JSON: one strict reader, ordered objects")
struct JSONTests {
    /// Quoting: exactly `"`, `\`, the C0 controls, DEL and the C1 controls are escaped (both the
    /// whole-string copy and the scalar-at-a-time path), and every result reads back as the string.
    @Test func quotingEscapesExactlyTheControls() throws {
        let cases: [(String, String)] = [
            ("/sys/fs/cgroup/pids/clab/8a966aed57cd", #""/sys/fs/cgroup/pids/clab/8a966aed57cd""#), ("", #""""#),
            ("a\"b", #""a\"b""#), ("c\\d", #""c\\d""#), ("x\ty\n", #""x\ty\n""#), ("\u{1}", #""\u0001""#),
            ("\u{7f}", #""\u007f""#), ("\u{85}", #""\u0085""#), ("\u{9f}", #""\u009f""#), ("\u{a0}", "\"\u{a0}\""),
            ("é 日本 🙂", "\"é 日本 🙂\""), ("ok\u{9f}", #""ok\u009f""#),
        ]
        for (text, quoted) in cases {
            #expect(JSONText.quoted(text) == quoted, "\(text.unicodeScalars.map(\.value))")
            #expect(try JSON.parse(Array(JSONText.quoted(text).utf8)).string == text)
        }
    }

    func reason(_ text: String) -> String { reason(bytes: Array(text.utf8)) }

    func reason(bytes: [UInt8]) -> String {
        do {
            _ = try JSON.parse(bytes)
            return "parsed"
        } catch {
            return error.description
        }
    }

    @Test func objectsKeepTheirOrderAndRoundTrip() throws {
        let text = #"{"Id":"abc","Names":["/web"],"State":{"Running":true,"Pid":0},"Labels":{}}"#
        let value = try JSON.parse(Array(text.utf8))
        #expect(value.object?.map(\.0) == ["Id", "Names", "State", "Labels"])
        #expect(value.text == text)
        #expect(value["State"]["Running"].bool == true)
        #expect(value["missing"]["deeper"] == .null)
    }

    @Test func wholeNumbersStayExact() throws {
        let value = try JSON.parse(Array(#"[18446744073709551615, -9223372036854775808, 1.5, 2e3, 0]"#.utf8))
        #expect(value == .array([.unsigned(.max), .signed(.min), .double(1.5), .double(2000), .int(0)]))
        #expect(value.text == "[18446744073709551615,-9223372036854775808,1.5,2000,0]")
        #expect(JSON.int(-3) == .signed(-3) && JSON.int(3) == .unsigned(3))
    }

    @Test func brokenDocumentsSayWhere() {
        #expect(
            reason("{\n  \"a\": 1,\n  \"a\": 2}")
                == #"not valid JSON at line 3, column 3: the key "a" appears twice in one object"#)
        #expect(reason(#"{"a": 01}"#).hasSuffix("a number may not start with 0"))
        #expect(reason(#"[1,]"#).hasSuffix("unexpected ']'"))
        #expect(reason(#"{"a": 1} x"#).hasSuffix("text after the end of the JSON value"))
        #expect(reason(#"["\x"]"#).hasSuffix(#"unknown escape '\x'"#))
        #expect(reason(#"["\u+041"]"#).hasSuffix(#"\u needs four hex digits"#))
        #expect(reason("[\"\u{1}\"]").hasSuffix("a control character inside a string (write \\n, \\t)"))
        #expect(reason("") == "not valid JSON at line 1, column 1: a value is missing before the end of the file")
    }

    /// A high surrogate with no low one after it once trapped on `low - 0xDC00` (clabd answers 400).
    @Test func loneSurrogatesAndBadUTF8AreRefused() throws {
        #expect(reason(#"["\uD800\u0041"]"#).hasSuffix(#"a broken \u surrogate pair"#))
        #expect(reason(#"["\uD800"]"#).hasSuffix(#"a lone \u surrogate"#))
        #expect(reason(#"["\uDC00"]"#).hasSuffix(#"a lone \u surrogate"#))
        #expect(reason("[\"\u{FF}\"]") == "parsed")
        var bytes = Array(#"["ab"]"#.utf8)
        bytes[2] = 0xFF
        #expect(reason(bytes: bytes) == "not valid JSON at line 1, column 2: a string that is not valid UTF-8")
        #expect(try JSON.parse(Array(#"["\uD83D\uDE00"]"#.utf8)) == .array([.string("😀")]))
    }

    @Test func depthIsBounded() {
        let ok = String(repeating: "[", count: JSON.maxDepth) + String(repeating: "]", count: JSON.maxDepth)
        #expect(reason(ok) == "parsed")
        let deep = "[" + ok + "]"
        #expect(reason(deep).hasSuffix("nested more than 64 levels deep"))
    }

    /// `clab bundle`'s config.json: tab-indented, ": " after keys, empty containers on one line.
    @Test func indentedAsRuncSpecWritesIt() {
        let value = JSON.object([
            ("ociVersion", .string("1.2.0")), ("process", .object([("args", .strings(["sh"])), ("env", .array([]))])),
        ])
        #expect(
            value.indented
                == "{\n\t\"ociVersion\": \"1.2.0\",\n\t\"process\": {\n\t\t\"args\": [\n\t\t\t\"sh\"\n\t\t],\n\t\t\"env\": []\n\t}\n}"
        )
    }
}
