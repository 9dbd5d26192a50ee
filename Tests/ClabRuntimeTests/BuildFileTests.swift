import ClabSys
import Foundation
import Testing

@testable import ClabImages
@testable import ClabRuntime

@Suite("build files")
struct BuildFileTests {
    @Test(arguments: [
        ("FROM busybox\nFOO bar\n", "Clabfile line 2: unknown instruction 'FOO'"),
        ("# comment\n\nRUN true\n", "Clabfile line 3: the first instruction must be FROM, not RUN"),
        ("FROM busybox\nCOPY onlyone\n", "Clabfile line 2: COPY takes a source and a destination"),
        ("FROM busybox\nRUN\n", "Clabfile line 2: RUN needs an argument"),
        ("FROM busybox\nFROM busybox\n", "Clabfile line 2: only one FROM"),
        ("", "Clabfile has no instructions"),
        ("FROM busybox\nRUN echo \\", "the last line ends with '\\'"),
    ])
    func malformedFilesNameTheLine(text: String, message: String) {
        let error = #expect(throws: ClabError.self) { try ImageBuilder.parse(text, file: "Clabfile") }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test func continuationsAndCase() throws {
        let parsed = try ImageBuilder.parse("from busybox\nrun echo a \\\n  && echo b\nCMD [\"ls\"]\n", file: "f")
        #expect(parsed.map(\.keyword) == ["FROM", "RUN", "CMD"])
        #expect(parsed[1].argument == "echo a  && echo b")
        #expect(parsed[1].line == 2)
        #expect(ImageBuilder.commandLine("[\"ls\", \"-l\"]") == ["ls", "-l"])
        #expect(ImageBuilder.commandLine("ls -l") == ["/bin/sh", "-c", "ls -l"])
    }

    @Test func imageNames() throws {
        #expect(try ImageRef.parse("web") == ImageRef(name: "web", tag: "latest"))
        #expect(try ImageRef.parse("web:1.0") == ImageRef(name: "web", tag: "1.0"))
        #expect(throws: ClabError.self) { try ImageRef.parse("Web/x") }
        #expect(throws: ClabError.self) { try ImageRef.parse("web:") }
    }
}
