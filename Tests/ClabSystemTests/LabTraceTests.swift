import ClabChecks
import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// Lab 14: reading a trace. The reference answers pass; the bad attempt (mknod for mknodat,
/// CLONE_PIDFD among the namespace flags) fails on exactly those, without being told the answer;
/// answers copied from another run fail on the container's pid (the verifier reads the learner's
/// own file, it has no key); a trace that is not the lab's, or was edited, is refused.
@Suite("lab 14 · reading a trace", needsRoot, .serialized)
struct Lab14Tests {
    static var dir: String { "/tmp/clab-tests-lab14-\(getpid())" }

    func cleanup(_ dirs: String...) {
        for d in [Self.dir] + dirs { try? FS.removeTree(d) }
    }

    func verify(_ dir: String = Self.dir) throws -> [ProbeResult] {
        try LabVerifiers.verify(lab: 14, input: LabInput(dir: dir), runtime: TestEnv.runtime)
    }

    @Test func solutionPasses() throws {
        try TestEnv.ensureImage()
        cleanup()
        defer { cleanup() }
        let out = try labScript(14, "solution.sh", Self.dir)
        #expect(out.status == 0, "\(out.stderr)")
        let check = try clab("lab", "check", "14", "--dir", Self.dir)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("all 8 properties hold: lab 14 done"), "\(check.stdout)")
        #expect(check.stdout.contains("mknodat EPERM: the trace agrees"))
    }

    @Test func badAttemptFailsWithoutGivingTheAnswerAway() throws {
        try TestEnv.ensureImage()
        cleanup()
        defer { cleanup() }
        let out = try labScript(14, "bad-attempt.sh", Self.dir)
        #expect(out.status == 0, "\(out.stderr)")
        let results = try verify()
        let failed = failedProperties(results)
        #expect(
            Set(failed.keys) == ["lab14.answer.flags", "lab14.answer.failed"], "\(failed)")
        let line = failed["lab14.answer.failed"] ?? ""
        #expect(line.contains("you answered mknod EPERM; your trace says otherwise"), "\(line)")
        #expect(line.contains("a C library function may make another call"))
        #expect(!line.contains("mknodat"), "the fix must not give the answer: \(line)")
        #expect(
            failed["lab14.answer.flags"]?.contains("CLONE_PIDFD makes no namespace") == true
        )
    }

    @Test func answersFromAnotherRunAndEditedTracesFail() throws {
        try TestEnv.ensureImage()
        let other = Self.dir + "-other"
        cleanup(other)
        defer { cleanup(other) }
        #expect(try labScript(14, "solution.sh", Self.dir).status == 0)
        // A second trace, answered with the first one's answers: the pid differs.
        try FS.makeDirectories(other)
        _ = try clab(
            "trace", "--step", "7", "--json", other + "/trace.jsonl", "--", "mknod", "/tmp/null", "c", "1", "3")
        try FileManager.default.copyItem(atPath: Self.dir + "/answers.txt", toPath: other + "/answers.txt")
        #expect(
            failedProperties(try verify(other)).keys.sorted() == ["lab14.answer.container-pid"])
        // Not the lab's trace: another stage in the header; a record removed.
        let origin = "lab14.trace-origin"
        let trace = FS.read(other + "/trace.jsonl") ?? ""
        try FS.write(trace.replacing("\"step\":7,", with: "\"step\":4,"), to: other + "/trace.jsonl")
        #expect(failedProperties(try verify(other))[origin]?.contains("it traced stage 4, not stage 7") == true)
        var lines = trace.split(separator: "\n")
        lines.remove(at: 3)
        try FS.write(lines.joined(separator: "\n") + "\n", to: other + "/trace.jsonl")
        #expect(failedProperties(try verify(other))[origin]?.contains("its end record counts") == true)
    }

    @Test func nothingThereIsAFailureNotAPass() throws {
        cleanup()
        let results = try verify()
        #expect(results.count == 8 && results.allSatisfy { !$0.passed }, "\(results)")
        #expect(results.first?.fix?.contains("clab trace --step 7 --json DIR/trace.jsonl") == true)
        #expect(results.dropFirst().allSatisfy { $0.evidence.hasPrefix("not checked: ") })
    }
}
