import ClabSys
import Testing

@testable import ClabCgroups

@Suite("cgroup limits: parsing")
struct CgroupLimitParsingTests {
    @Test func defaultsProtectTheMachine() throws {
        let limits = try CgroupLimits.parse(memory: nil, memorySwap: nil, cpus: nil, cpuShares: nil, pids: nil)
        #expect(limits.memoryBytes == 256 << 20)
        #expect(limits.pids == 512)
        #expect(limits.cpus == nil)
    }

    @Test func validation() throws {
        #expect(throws: ClabError.self) {
            try CgroupLimits.parse(memory: "1M", memorySwap: nil, cpus: nil, cpuShares: nil, pids: nil)
        }
        #expect(throws: ClabError.self) {
            try CgroupLimits.parse(memory: nil, memorySwap: nil, cpus: "0", cpuShares: nil, pids: nil)
        }
        #expect(throws: ClabError.self) {
            try CgroupLimits.parse(memory: nil, memorySwap: nil, cpus: "nan", cpuShares: nil, pids: nil)
        }
        #expect(throws: ClabError.self) {
            try CgroupLimits.parse(memory: nil, memorySwap: nil, cpus: nil, cpuShares: nil, pids: "0")
        }
        let ok = try CgroupLimits.parse(memory: "64M", memorySwap: "128M", cpus: "0.5", cpuShares: "512", pids: "32")
        #expect(
            ok == CgroupLimits(memoryBytes: 64 << 20, memorySwapBytes: 128 << 20, cpus: 0.5, cpuShares: 512, pids: 32))
    }
}
