import ClabHost
import ClabImages
import ClabRuntime
import ClabSpec
import Foundation
import Testing

@testable import ClabChecks

/// The stage probes' ids, without a container: each stage's probes are fed made-up facts about
/// this test process. Stage 8 (a cgroup) and stage 9 (an image's layers) need a real
/// container: `probe(n)` checks those runs' ids.
@Suite("probe ids")
struct ProbeIDTests {
    static func context(stage n: Int, hardening: Hardening?) throws -> ProbeContext {
        let stage = try Stage.numbered(n)
        var spec = ContainerSpec(
            id: "0123456789ab", stageNumber: n, hostname: "0123456789ab", imageRoot: "/nonexistent",
            bundleDir: "/nonexistent", command: ["/bin/sh"], env: [],
            idMapping: stage.has(.user) ? .defaultRange : nil)
        spec.hardening = hardening
        let layout = StateLayout(root: "/tmp/clab-probe-ids-\(getpid())", runDir: "/tmp/clab-probe-ids-\(getpid())/run")
        let facts = [
            "pid": "1", "image_marker": "clab busybox image", "breakout_status": "1", "uid": "0", "touch": "ok",
            "hostname_before": "0123456789ab", "procs": "3", "kill_host": "1", "mounted": "1", "shm": "0",
            "netdevs": "lo eth0 tunl0", "lo": "1: lo: <LOOPBACK,UP,LOWER_UP>", "routes": "0",
        ]
        return ProbeContext(
            stage: stage, spec: spec, tag: "clab-probe-ids", host: HostView.capture(),
            inside: InsideView(pid: getpid(), facts: facts), segment: nil, cgroup: nil, cgroupLayout: "?",
            runtime: Runtime(layout: layout), image: ImageStore.baseName, volumes: VolumeStore(layout: layout),
            roDir: layout.root + "/ro")
    }

    @Test(arguments: Stage.all.map(\.number))
    func idsAreUniqueAndDotted(stage n: Int) throws {
        var hardening = Hardening()
        hardening.seccompFilter = [0]
        let results = try StageProbes.evaluate(Self.context(stage: n, hardening: n >= 12 ? hardening : nil))
        #expect(!results.isEmpty)
        #expect(StageProbes.duplicateIDs(results).isEmpty, "\(results.map(\.id))")
        for id in results.map(\.id) {
            #expect(
                id.split(separator: ".").count >= 2
                    && id.allSatisfy { $0.isLowercase || $0.isNumber || "._-".contains($0) }, "\(id)")
        }
        // Every namespace of the stage is named by its kind; the rest are one line.
        let stage = try Stage.numbered(n)
        for ns in stage.namespaces { #expect(results.contains { $0.id == "ns.own.\(ns.rawValue)" }) }
        #expect(results.contains { $0.id == "ns.shared" } == (stage.namespaces.count < Namespace.allCases.count))
    }

    @Test func aRepeatedIdIsFound() {
        let one = ProbeResult(id: "pid.pid1", stage: 3, property: "a", passed: true, evidence: "")
        let other = ProbeResult(id: "pid.pid1", stage: 3, property: "b", passed: true, evidence: "")
        #expect(StageProbes.duplicateIDs([one, other]) == ["pid.pid1"])
    }
}
