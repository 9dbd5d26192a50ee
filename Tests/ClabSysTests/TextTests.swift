import ClabSys
import Testing

/// ClabSys's text helpers that commands share: sizes (`--memory`, `--max-size`, `--buffer`) and
/// the names clab makes directories of.
@Suite("text: sizes and names")
struct TextTests {
    @Test(arguments: [
        ("512k", Int64(512 << 10)), ("64M", 64 << 20), ("64m", 64 << 20), ("1G", 1 << 30), ("64Mi", 64 << 20),
        ("1048576", 1_048_576), ("100b", 100),
    ])
    func sizes(text: String, bytes: Int64) throws {
        #expect(try parseByteSize(text, option: "--memory") == bytes)
    }

    @Test(arguments: ["abc", "0", "-1", "1.5G", "", "G", "64X"])
    func badSizes(text: String) {
        #expect(throws: ClabError.self) { try parseByteSize(text, option: "--memory") }
    }

    @Test func sizesPrintInBinaryUnits() {
        #expect(humanBytes(512) == "512 B")
        #expect(humanBytes(32 << 20) == "32.0 MiB")
        #expect(humanBytes(1536) == "1.5 KiB")
    }

    @Test(arguments: ["web", "a", "web-1.data_2", String(repeating: "x", count: 64)])
    func plainNames(name: String) {
        #expect(isPlainName(name, uppercase: false))
    }

    @Test(arguments: [
        "", ".", "..", "-web", "_web", ".web", "a/b", "../x", "web 1", "wéb", String(repeating: "x", count: 65),
    ])
    func namesThatAreNotPlain(name: String) {
        #expect(!isPlainName(name, uppercase: false))
        #expect(!isPlainName(name, uppercase: true))
    }

    @Test func aShorterLimitHolds() {
        #expect(isPlainName(String(repeating: "n", count: 32), uppercase: false, maxLength: 32))
        #expect(!isPlainName(String(repeating: "n", count: 33), uppercase: false, maxLength: 32))
    }

    @Test func uppercaseOnlyWhenAllowed() {
        #expect(!isPlainName("Web", uppercase: false))
        #expect(isPlainName("Web", uppercase: true))
    }
}
