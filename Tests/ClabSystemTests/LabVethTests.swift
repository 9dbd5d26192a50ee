import ClabChecks
import ClabRuntime
import Foundation
import Glibc
import Testing

/// Lab 6: two network namespaces and a veth pair, by hand. The reference solution passes, with a
/// datagram that really crossed the pair; the bad attempt (the peer left down) and a pair with
/// both ends in one namespace fail with the fix; with nothing built every property fails and
/// the datagram is not even tried. Only lab6-a and lab6-b are made (TEST-NET-2 addresses inside
/// them), and they are deleted whatever happens.
@Suite("lab 6 · two network namespaces and a veth pair", needsRoot, .serialized)
struct Lab6Tests {
    @discardableResult
    func script(_ name: String, cleanup: Bool = false) throws -> Output {
        let out = try cleanup ? labScript(6, name, "cleanup") : labScript(6, name)
        #expect(out.status == 0, "\(name)\(cleanup ? " cleanup" : ""): \(out.stdout)\(out.stderr)")
        return out
    }

    func ip(_ args: String...) throws {
        let out = try runProcess(["/usr/sbin/ip"] + args)
        #expect(out.status == 0, "ip \(args.joined(separator: " ")): \(out.stderr)")
    }

    /// Neither namespace is left, whatever the test did.
    func cleanup() {
        _ = try? script("solution.sh", cleanup: true)
        let left = (try? runProcess(["/usr/sbin/ip", "netns", "list"]))?.stdout ?? ""
        #expect(!left.contains("lab6-"), "left behind: \(left)")
    }

    @Test func solutionPasses() throws {
        cleanup()
        defer { cleanup() }
        try script("solution.sh")
        // Idempotent: a second run starts from scratch.
        try script("solution.sh")
        let out = try clab("lab", "check", "6")
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 9 properties hold: lab 6 done"), "\(out.stdout)")
        #expect(
            out.stdout.contains("received: lab6-b got the datagram on 198.51.100.2 port "), "\(out.stdout)")
        #expect(out.stdout.contains("lab6-a veth-a (veth, 198.51.100.1/24) <-> lab6-b veth-b (veth, 198.51.100.2/24)"))
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        cleanup()
        defer { cleanup() }
        try script("bad-attempt.sh")
        let results = try LabVerifiers.verify(lab: 6, input: LabInput())
        let failed = failedProperties(results)
        #expect(
            Set(failed.keys) == ["lab6.veth-address.lab6-b", "lab6.datagram"], "\(results)")
        #expect(
            failed["lab6.veth-address.lab6-b"]?.contains("ip -n lab6-b link set veth-b up") == true)
        let datagram = results.first { $0.id == "lab6.datagram" }
        #expect(datagram?.evidence.contains("lab6-b did not receive it") == true, "\(datagram?.evidence ?? "")")
    }

    /// Both ends of the pair in lab6-a: addressed and up, yet lab6-b holds nothing, and the
    /// verifier says which end to move.
    @Test func bothEndsInOneNamespaceFail() throws {
        cleanup()
        defer { cleanup() }
        try ip("netns", "add", "lab6-a")
        try ip("netns", "add", "lab6-b")
        try ip("link", "add", "veth-a", "netns", "lab6-a", "type", "veth", "peer", "name", "veth-b", "netns", "lab6-a")
        try ip("-n", "lab6-a", "addr", "add", "198.51.100.1/24", "dev", "veth-a")
        try ip("-n", "lab6-a", "addr", "add", "198.51.100.2/24", "dev", "veth-b")
        for (ns, dev) in [("lab6-a", "lo"), ("lab6-a", "veth-a"), ("lab6-a", "veth-b"), ("lab6-b", "lo")] {
            try ip("-n", ns, "link", "set", dev, "up")
        }
        let results = try LabVerifiers.verify(lab: 6, input: LabInput())
        let failed = failedProperties(results)
        #expect(
            Set(failed.keys) == ["lab6.veth-address.lab6-b", "lab6.veth-pair", "lab6.datagram"], "\(results)")
        let pair = failed["lab6.veth-pair"] ?? ""
        #expect(pair.contains("both ends of the pair are in one namespace"), "\(pair)")
        #expect(pair.contains("ip -n lab6-a link set veth-b netns lab6-b"), "\(pair)")
        let datagram = results.first { $0.id == "lab6.datagram" }
        #expect(
            datagram?.evidence.contains("lab6-b cannot receive on 198.51.100.2") == true, "\(datagram?.evidence ?? "")")
    }

    /// Nothing built: every property but "made by hand" fails, and none of them on a guess: the
    /// datagram is not tried (it would be sent from the host's own namespace otherwise).
    @Test func nothingBuiltFailsEveryProperty() throws {
        cleanup()
        let results = try LabVerifiers.verify(lab: 6, input: LabInput())
        #expect(results.filter { !$0.passed }.count == 8, "\(results)")
        let datagram = results.first { $0.id == "lab6.datagram" }
        #expect(datagram?.evidence.hasPrefix("not checked: ") == true, "\(datagram?.evidence ?? "")")
        let extra = try clab("lab", "check", "6", "--pid", "1")
        #expect(extra.status == 2 && extra.stderr.contains("lab 6 finds what it checks by itself and takes no --pid"))
    }
}
