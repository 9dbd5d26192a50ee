import ClabChecks
import ClabHost
import ClabRuntime
import Foundation
import Glibc
import Testing

/// Lab 16: an image of the learner's own in a registry under two tags, pulled back by digest.
/// The reference solution passes (through `clab lab check 16 --registry`, recorded); the
/// known-bad attempt (stable pushed from a rebuild, the pull by tag) fails on exactly those two
/// properties; a registry that is not there fails on the first line, never passes.
@Suite(
    "lab 16 · two tags, one digest", needsRoot, .serialized,
    .enabled(if: LocalRegistry.available, "needs Debian's docker-registry (make test installs it)"))
struct Lab16Tests {
    static var root: String { TestEnv.root + "/lab16" }
    let dir = TestEnv.root + "/lab16-work-\(UUID().uuidString.prefix(8))"
    typealias P = Lab16Verifier.Property

    func script(_ name: String, _ registry: LocalRegistry, _ extra: String = "") throws -> Output {
        try TestEnv.ensureImage(root: Self.root)
        return try labScript(16, name, dir, registry.address, extra, root: Self.root)
    }

    func run(_ args: String...) throws -> Output {
        try runProcess([TestEnv.clab] + args, env: ["CLAB_ROOT": Self.root])
    }

    func verify(_ registry: String) -> [ProbeResult] {
        (try? LabVerifiers.verify(
            lab: 16, input: LabInput(registry: registry),
            runtime: Runtime(layout: StateLayout.resolve(rootOption: Self.root), initPath: TestEnv.runtime.initPath)))
            ?? []
    }

    @Test func solutionPassesAndIsRecorded() throws {
        let registry = try LocalRegistry()
        defer {
            _ = try? script("solution.sh", registry, "cleanup")
            registry.stop()
        }
        let made = try script("solution.sh", registry)
        #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
        let digest = made.stdout.trimmed
        #expect(digest.hasPrefix("sha256:"), "\(made.stdout)")
        let out = try run("lab", "check", "16", "--registry", registry.address)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 6 properties hold: lab 16 done"), "\(out.stdout)")
        #expect(out.stdout.contains("both tags → \(digest)"), "\(out.stdout)")
        #expect(out.stdout.contains("has 2 layers"), "\(out.stdout)")
        #expect(try run("progress").stdout.contains("✓ 14 "), "lab 16 marks lesson 14 done")
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        let registry = try LocalRegistry()
        defer {
            _ = try? script("bad-attempt.sh", registry, "cleanup")
            registry.stop()
        }
        let made = try script("bad-attempt.sh", registry)
        #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
        let failed = failedProperties(verify(registry.address))
        #expect(Set(failed.keys) == [P.same.id, P.pulled.id], "\(failed)")
        #expect(failed[P.same.id]?.contains("two different images") == true, "\(failed)")
        #expect(failed[P.same.id]?.contains("tag the one image twice") == true, "\(failed)")
        #expect(failed[P.pulled.id]?.contains("clab pull \(registry.address)/lab16@sha256:") == true, "\(failed)")
        let out = try run("lab", "check", "16", "--registry", registry.address)
        #expect(out.status == 1)
        #expect(out.stdout.contains("4 of 6 properties hold; to fix:"), "\(out.stdout)")
    }

    @Test func noRegistryIsAFailureNotAPass() throws {
        let port = try LocalRegistry.freePort()
        let results = verify("127.0.0.1:\(port)")
        #expect(results.count == 6)
        #expect(results.allSatisfy { !$0.passed })
        #expect(results.first?.evidence.contains("cannot reach the registry 127.0.0.1:\(port)") == true, "\(results)")
        let missing = try run("lab", "check", "16")
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("--registry HOST:PORT"), "\(missing.stderr)")
    }
}
