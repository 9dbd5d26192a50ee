import ClabSys
import FoundationEssentials

/// What `clab step 8` limits. Defaults protect a classroom machine: a runaway container cannot
/// take all memory or fill the process table unless the user asks for it.
public struct CgroupLimits: Sendable, Equatable {
    public var memoryBytes: Int64?
    /// Memory plus swap (Docker's --memory-swap); nil leaves swap alone.
    public var memorySwapBytes: Int64?
    /// CPUs of time per period (0.5 = half of one CPU), enforced by CFS bandwidth control.
    public var cpus: Double?
    /// Relative weight when CPUs are contended (v1 cpu.shares, default 1024).
    public var cpuShares: Int?
    public var pids: Int?
    /// cpuset: the CPUs and memory nodes the container may use ("0-1", "0,2"), kernel list syntax.
    public var cpusetCpus: String?
    public var cpusetMems: String?
    /// Whether a cpuset cgroup is needed (v1: a cgroup in the cpuset hierarchy too).
    public var usesCpuset: Bool { cpusetCpus != nil || cpusetMems != nil }

    /// A kernel CPU or node list: numbers and ranges, comma-separated ("0-3,8").
    public static func isCpuList(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 256
            && text.split(separator: ",", omittingEmptySubsequences: false).allSatisfy { item in
                let ends = item.split(separator: "-", omittingEmptySubsequences: false)
                return (1...2).contains(ends.count)
                    && ends.allSatisfy {
                        !$0.isEmpty && $0.count <= 5 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber)
                    }
            }
    }

    public static let defaultMemory: Int64 = 256 << 20
    public static let defaultPids = 512
    /// Below this the container's own init cannot start; the kernel would accept less and
    /// OOM-kill it at once, which teaches nothing.
    public static let minimumMemory: Int64 = 4 << 20

    public init(
        memoryBytes: Int64? = CgroupLimits.defaultMemory, memorySwapBytes: Int64? = nil, cpus: Double? = nil,
        cpuShares: Int? = nil, pids: Int? = CgroupLimits.defaultPids
    ) {
        self.memoryBytes = memoryBytes
        self.memorySwapBytes = memorySwapBytes
        self.cpus = cpus
        self.cpuShares = cpuShares
        self.pids = pids
    }

    /// From the command line's strings: refuses bad values before anything exists.
    public static func parse(
        memory: String?, memorySwap: String?, cpus: String?, cpuShares: String?, pids: String?
    ) throws -> CgroupLimits {
        var limits = CgroupLimits()
        if let memory {
            let bytes = try parseByteSize(memory, option: "--memory")
            guard bytes >= minimumMemory else {
                throw ClabError(
                    "--memory \(memory) is below clab's minimum of 4M: the container's init alone needs about 3 MiB",
                    exitCode: 2)
            }
            limits.memoryBytes = bytes
        }
        if let memorySwap {
            let bytes = try parseByteSize(memorySwap, option: "--memory-swap")
            guard let memory = limits.memoryBytes, bytes >= memory else {
                throw ClabError(
                    "--memory-swap \(memorySwap) must be at least --memory: it is memory plus swap, as in Docker",
                    exitCode: 2)
            }
            limits.memorySwapBytes = bytes
        }
        if let cpus {
            guard let value = Double(cpus), value.isFinite, value > 0, value <= 1024 else {
                throw ClabError("--cpus \(cpus) is not a positive number of CPUs (for example 0.5 or 2)", exitCode: 2)
            }
            guard value >= 0.01 else {
                throw ClabError(
                    "--cpus \(cpus) is below 0.01: the kernel's smallest quota is 1 ms per 100 ms", exitCode: 2)
            }
            limits.cpus = value
        }
        if let cpuShares {
            guard let value = Int(cpuShares), (2...262_144).contains(value) else {
                throw ClabError(
                    "--cpu-shares \(cpuShares) must be a whole number from 2 to 262144 (default 1024)", exitCode: 2)
            }
            limits.cpuShares = value
        }
        if let pids {
            guard let value = Int(pids), value > 0 else {
                throw ClabError("--pids \(pids) must be a whole number of processes, at least 1", exitCode: 2)
            }
            limits.pids = value
        }
        return limits
    }
}
