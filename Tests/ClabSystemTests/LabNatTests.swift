import ClabChecks
import ClabLessons
import ClabRuntime
import Foundation
import Glibc
import Testing

/// Lab 15: NAT by hand. The reference solution passes, with a datagram that reached the outside
/// from the host's address; the bad attempt (everything but the masquerade rule) fails exactly
/// the NAT property, with the rule as its fix; with nothing built, nothing passes and no
/// datagram is tried. Only lab15-c, lab15-h and lab15-out are made (10.15.0.0/24 and TEST-NET-2
/// inside them), and they are deleted whatever happens. The host's ip_forward is never touched.
@Suite("lab 15 · NAT by hand", needsRoot, .serialized)
struct Lab15Tests {
    static let nat = "lab15.datagram"

    @discardableResult
    func script(_ name: String, cleanup: Bool = false) throws -> Output {
        let out = try cleanup ? labScript(15, name, "cleanup") : labScript(15, name)
        #expect(out.status == 0, "\(name)\(cleanup ? " cleanup" : ""): \(out.stdout)\(out.stderr)")
        return out
    }

    /// No lab15 namespace is left, whatever the test did.
    func cleanup() {
        _ = try? script("solution.sh", cleanup: true)
        let left = (try? runProcess(["/usr/sbin/ip", "netns", "list"]))?.stdout ?? ""
        #expect(!left.contains("lab15-"), "left behind: \(left)")
    }

    @Test func solutionPasses() throws {
        cleanup()
        defer { cleanup() }
        try script("solution.sh")
        // Idempotent: a second run starts from scratch.
        try script("solution.sh")
        let out = try clab("lab", "check", "15")
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 12 properties hold: lab 15 done"), "\(out.stdout)")
        #expect(
            out.stdout.contains("received: lab15-out got the datagram on 198.51.100.2 port "), "\(out.stdout)")
        #expect(out.stdout.contains(", from 198.51.100.1\n"), "\(out.stdout)")
        #expect(out.stdout.contains("br15 (bridge, 10.15.0.1/24) holds veth-c (to lab15-c)"), "\(out.stdout)")
        // The sysctl the solution sets is lab15-h's own (the check above saw it there): every
        // sysctl it runs is inside `ip netns exec`. The host's ip_forward is not compared before
        // and after: parallel network tests switch it on and off (CI failed on that).
        let solution = try String(contentsOfFile: try Lab.numbered(15).directory + "/solution.sh", encoding: .utf8)
        let sysctls = solution.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.hasPrefix("#") && $0.contains("sysctl") }
        #expect(!sysctls.isEmpty && sysctls.allSatisfy { $0.hasPrefix("ip netns exec ") }, "\(sysctls)")
    }

    @Test func badAttemptFailsOnlyTheNat() throws {
        cleanup()
        defer { cleanup() }
        try script("bad-attempt.sh")
        let results = try LabVerifiers.verify(lab: 15, input: LabInput())
        let failed = failedProperties(results)
        #expect(Set(failed.keys) == [Self.nat], "\(results)")
        #expect(failed[Self.nat]?.contains("oifname uplink masquerade") == true, "\(failed)")
        let datagram = results.first { $0.id == Self.nat }
        // The wording says what a learner is to see.
        #expect(datagram?.property == "a datagram from lab15-c reaches 198.51.100.2 from 198.51.100.1 (masqueraded)")
        // Arrived with the container's own source, or (strict reverse-path filtering) not at all.
        let evidence = datagram?.evidence ?? ""
        #expect(
            evidence.contains("from 10.15.0.2: the container's own address") || evidence.contains("did not receive it"),
            "\(evidence)")
    }

    /// Nothing built: only "made by hand" holds, and the datagram is not even tried (it would be
    /// sent from the host's own namespace otherwise).
    @Test func nothingBuiltFailsEveryProperty() throws {
        cleanup()
        let results = try LabVerifiers.verify(lab: 15, input: LabInput())
        #expect(results.count == 12)
        #expect(results.filter { !$0.passed }.count == 11, "\(results)")
        let datagram = results.first { $0.id == Self.nat }
        #expect(datagram?.evidence.hasPrefix("not checked: ") == true, "\(datagram?.evidence ?? "")")
        let extra = try clab("lab", "check", "15", "--pid", "1")
        #expect(extra.status == 2 && extra.stderr.contains("lab 15 finds what it checks by itself and takes no --pid"))
    }
}
