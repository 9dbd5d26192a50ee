import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Testing

@testable import ClabCLI

@Suite("stage 12 · hardening: the spec and the options")
struct HardeningSpecTests {
    @Test func hardeningRoundTripsOnTheWire() throws {
        var spec = ContainerSpec(
            id: "x", stageNumber: 12, hostname: "x", imageRoot: "/i", bundleDir: "/b", command: ["sh"], env: [],
            idMapping: .defaultRange)
        var h = Hardening()
        h.capabilities = [.chown, .checkpointRestore, .netAdmin]
        h.noNewPrivileges = false
        h.readOnlyRoot = true
        h.cgroupNamespace = false
        h.timeOffsets = TimeOffsets(monotonic: -3600, boottime: 86_400 * 3)
        h.seccompName = "my profile"
        h.seccompFilter = Array(0..<64)
        h.maskedPaths = ["/proc/kcore"]
        h.readonlyPaths = []
        spec.hardening = h
        #expect(throws: Never.self) { try spec.validate() }
        #expect(try ContainerSpec(wire: spec.wire) == spec)
        spec.hardening = Hardening()
        #expect(try ContainerSpec(wire: spec.wire) == spec)
    }

    @Test func hardeningBelowStage12OrAFilterOfPartialInstructionsIsRefused() {
        var spec = ContainerSpec(
            id: "x", stageNumber: 11, hostname: "x", imageRoot: "/i", bundleDir: "/b", command: ["sh"], env: [],
            idMapping: .defaultRange)
        spec.hardening = Hardening()
        #expect(throws: ClabError.self) { try spec.validate() }
        spec.stageNumber = 12
        spec.hardening?.seccompFilter = [1, 2, 3]
        #expect(throws: ClabError.self) { try spec.validate() }
    }

    @Test func decodingRefusesUnknownCapabilityBitsAndFlags() throws {
        var spec = ContainerSpec(
            id: "x", stageNumber: 12, hostname: "x", imageRoot: "/i", bundleDir: "/b", command: ["sh"], env: [],
            idMapping: nil)
        spec.hardening = Hardening()
        let wire = spec.wire
        // The hardening field is last: its value starts 5 bytes after its tag.
        guard let tagAt = wire.lastIndex(of: 14) else { throw ClabError("no hardening tag") }
        var bits = wire
        bits[tagAt + 5 + 7] = 0x80  // capability bit 63
        #expect(throws: SpecWireError.self) { try ContainerSpec(wire: bits) }
        var flags = wire
        flags[tagAt + 5 + 8] = 0x30
        #expect(throws: SpecWireError.self) { try ContainerSpec(wire: flags) }
    }

    @Test func capabilitiesResolveAsDockerDoes() throws {
        let base = Capability.dockerDefault
        #expect(base.count == 14)
        #expect(Capability.mask(base) == 0xa804_25fb)
        #expect(try Capability.resolve(base: base, add: [], drop: []) == base)
        #expect(try Capability.resolve(base: base, add: ["net_admin"], drop: ["CAP_CHOWN"]).contains(.netAdmin))
        #expect(try !Capability.resolve(base: base, add: [], drop: ["chown"]).contains(.chown))
        #expect(try Capability.resolve(base: base, add: ["NET_BIND_SERVICE"], drop: ["ALL"]) == [.netBindService])
        #expect(try Capability.resolve(base: base, add: ["ALL"], drop: ["SYS_ADMIN"]).count == 40)
        #expect(throws: ClabError.self) { try Capability.resolve(base: base, add: ["NOPE"], drop: []) }
        #expect(Capability(name: "cap_sys_admin") == .sysAdmin)
        #expect(Capability.set(fromMask: 0x1) == [.chown])
    }

    @Test func timeOffsetsParse() throws {
        #expect(try TimeOffsets.parse("boottime=3d,monotonic=-1h") == TimeOffsets(monotonic: -3600, boottime: 259_200))
        #expect(try TimeOffsets.parse("monotonic=5") == TimeOffsets(monotonic: 5, boottime: 0))
        for bad in ["boot=1", "boottime", "boottime=x", "boottime=99999999999d", ""] {
            #expect(throws: ClabError.self, "\(bad)") { try TimeOffsets.parse(bad) }
        }
    }
}
