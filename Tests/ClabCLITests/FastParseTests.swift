import ArgumentParser
import Foundation
import Glibc
import Testing

@testable import ClabCLI
@testable import ClabHost
@testable import ClabRuntime
@testable import ClabSpec
@testable import ClabSys

/// `clab step`'s shortcut past ArgumentParser (FastParse) must give exactly what ArgumentParser
/// gives (StepCommand.plain), or nothing (then ArgumentParser runs and words every error).
/// Compared field by field (`dump` of the whole request).
@Suite("clab step's fast parse")
struct FastParseTests {
    /// Argv the shortcut takes: the benchmark's, the lessons' shapes, every option of `step` once.
    static let taken: [[String]] = [
        ["step", "7", "--quiet", "--root", "/tmp/x", "--", "/bin/true"],
        ["step", "7"],
        ["step", "--quiet", "3"],
        ["step", "3", "--hostname", "web", "--quiet", "--root", "/tmp/x", "--", "ps", "-ef"],
        ["step", "4", "--", "ls", "--help", "-h", "--version", "--root", "x"],
        ["step", "7", "--"],
        ["step", "0"],
        ["step", "99", "--", "x"],
        ["step", "07", "--", "hostname"],
        [
            "step", "8", "--memory", "64M", "--memory-swap", "128M", "--cpus", "0.5", "--cpu-shares", "512", "--pids",
            "32", "--cgroup-parent", "lab/alice", "--", "sh", "-c", "echo hi",
        ],
        [
            "step", "12", "--image", "busybox:1", "--name", "web", "--keep", "-v", "data:/d", "--volume", "/srv:/t:ro",
            "--net", "none", "-p", "8080:80", "--publish", "127.0.0.1:81:81/udp", "--cap-add", "NET_ADMIN",
            "--cap-add", "SYS_TIME", "--cap-drop", "ALL", "--security-opt", "seccomp=unconfined", "--security-opt",
            "no-new-privileges=false", "--read-only", "--userns", "host", "--time-offset", "boottime=1d", "--", "sh",
        ],
        ["step", "11", "--net", "container:web", "-p", "80:80", "-v", "a:/a", "-v", "b:/b"],
    ]

    /// Argv left to ArgumentParser: help and version, `=`, repeats, empty or dash-led values,
    /// unknown options, a second or odd positional, another command.
    static let declined: [[String]] = [
        ["step", "7", "--help"], ["step", "-h"], ["step", "7", "--version"], ["help", "step"], ["step"],
        ["step", "7", "--root=/x"], ["step", "7", "--root", ""], ["step", "7", "--root", "-x"],
        ["step", "7", "--root"], ["step", "-1"], ["step", "x"], ["step", "7", "8"], ["step", "7", "ls"],
        ["step", "7", "--quiet", "--quiet"], ["step", "7", "--root", "a", "--root", "b"], ["step", "7", "--bogus"],
        ["step", "7", "--generate-completion-script", "bash"], ["step", "8", "--cpus", "-1"], ["check", "7"],
        ["step", "7", "-q"], ["step", "7", "--qui"], ["step", "7", "-vdata:/d"], ["step", "7", "-pv", "x"],
        ["trace", "--step", "7", "--", "true"], [],
    ]

    @Test(arguments: taken)
    func sameCommandAsArgumentParser(argv: [String]) throws {
        let fast = try #require(FastParse.step(argv), "the shortcut declined \(argv)")
        let full = try #require(try Clab.parseAsRoot(argv) as? StepCommand).plain
        #expect(Self.dumped(fast) == Self.dumped(full))
        // And the request both lead to (or the same refusal).
        #expect(Self.requestOrError(fast) == Self.requestOrError(full))
    }

    @Test(arguments: declined)
    func otherShapesGoToArgumentParser(argv: [String]) {
        #expect(FastParse.step(argv) == nil)
    }

    /// A failed validation is ArgumentParser's to report: the shortcut declines `--root ""`
    /// (which GlobalOptions.validate refuses) rather than wording it itself.
    @Test func validationFailuresAreDeclined() {
        #expect(FastParse.step(["step", "7", "--root", ""]) == nil)
        #expect(throws: (any Error).self) { try Clab.parseAsRoot(["step", "7", "--root", ""]) }
    }

    static func dumped(_ command: StepRequest) -> String {
        var text = ""
        dump(command, to: &text)
        return text
    }

    static func requestOrError(_ command: StepRequest) -> String {
        do {
            var text = ""
            dump(try command.request(), to: &text)
            return text
        } catch {
            return "error: \(error)"
        }
    }
}

/// The other shortcuts on a container's start path keep their answers.
@Suite("start path shortcuts")
struct StartPathTests {
    /// The spec's field names in init's messages, spelled out (not by reflection), are the
    /// case names they replaced.
    @Test func wireTagNamesAreTheCaseNames() {
        for tag in ContainerSpec.WireTag.allCases {
            #expect(tag.name == String(describing: tag))
        }
    }

    /// Container ids from the hex table: twelve lowercase hex digits, fresh each time.
    @Test func containerIDsAreTwelveHexDigits() {
        let ids = (0..<50).map { _ in ContainerSpec.newID() }
        for id in ids {
            #expect(id.count == 12 && id.allSatisfy { "0123456789abcdef".contains($0) }, "\(id)")
        }
        #expect(Set(ids).count == ids.count)
    }

    /// makeDirectories' one-mkdir shortcut: a leaf under an existing parent, an existing path,
    /// a deep path (the walk), each new directory with exactly the mode asked for, existing ones
    /// untouched, and a file in the way named by the walk.
    @Test func makeDirectoriesKeepsItsAnswers() throws {
        let base = "/tmp/clab-mkdirs-\(getpid())-\(ContainerSpec.newID())"
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FS.makeDirectories(base + "/a/b/c", mode: 0o700)
        let old = umask(0)
        defer { umask(old) }
        try FS.makeDirectories(base + "/a/b/d", mode: 0o710)
        try FS.makeDirectories(base + "/a/b/d", mode: 0o755)
        chmod(base + "/a", 0o751)
        try FS.makeDirectories(base + "/a/e/f", mode: 0o700)
        func mode(_ path: String) -> mode_t {
            var st = stat()
            return stat(path, &st) == 0 ? st.st_mode & 0o7777 : 0
        }
        #expect(mode(base + "/a/b/c") == 0o700)
        #expect(mode(base + "/a/b/d") == 0o710)
        #expect(mode(base + "/a") == 0o751)
        #expect(mode(base + "/a/e") == 0o700 && mode(base + "/a/e/f") == 0o700)
        try FS.write("x", to: base + "/file")
        let error = #expect(throws: SyscallError.self) { try FS.makeDirectories(base + "/file/g/h") }
        #expect(error?.call == "mkdir \(base)/file/g", "\(String(describing: error))")
    }

    /// String.trimmed (bytes, for ASCII) gives what the generic StringProtocol version gives.
    @Test func trimmedOnBytesMatchesTheGenericVersion() {
        for text in [
            "", " ", "\n", "65536\n", "  a b \t\n", "\t\tx", "x", "a\r\n", "\r\n a \r\n", " é ", " \u{301}x ",
            "0::/clab/1\n", "\n\n",
        ] {
            #expect(text.trimmed == Substring(text).trimmed, "\(Array(text.utf8))")
        }
    }

    /// StateLayout keeps a clean absolute --root as given and standardizes the others as before.
    @Test func cleanRootsSkipStandardizing() {
        for clean in ["/tmp/x", "/var/lib/clab", "/a/b.c/d..e"] {
            #expect(StateLayout.isClean(clean))
            #expect(StateLayout.resolve(rootOption: clean).root == URL(fileURLWithPath: clean).standardizedFileURL.path)
        }
        for odd in ["/", "/tmp/", "/tmp//x", "/tmp/./x", "/tmp/../x", "/tmp/x/.", "/tmp/x/.."] {
            #expect(!StateLayout.isClean(odd))
            #expect(StateLayout.resolve(rootOption: odd).root == URL(fileURLWithPath: odd).standardizedFileURL.path)
        }
    }

    /// FS.read with read(2): a file, a /proc file (size 0), a missing path, a directory.
    @Test func readsWholeFiles() throws {
        let path = "/tmp/clab-read-\(getpid())-\(ContainerSpec.newID())"
        defer { unlink(path) }
        let text = String(repeating: "0123456789abcdef\n", count: 3000)
        try FS.write(text, to: path)
        #expect(FS.read(path) == text)
        #expect(FS.read("/proc/self/status")?.contains("Pid:\t\(getpid())") == true)
        #expect(FS.read(path + ".missing") == nil)
        #expect(FS.read("/tmp") == nil)
    }
}
