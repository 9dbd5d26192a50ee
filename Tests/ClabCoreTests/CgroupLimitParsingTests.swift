import ClabSys
import Testing

@testable import ClabCgroups
@testable import ClabCore

@Suite("cgroup limits: parsing")
struct CgroupLimitParsingTests {
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
