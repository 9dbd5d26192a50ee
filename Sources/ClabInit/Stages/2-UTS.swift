import ClabSys

/// Stage 2: a UTS namespace (CLONE_NEWUTS) holds its own hostname and NIS domain name.
/// sethostname(2) inside changes only the copy this namespace holds.
enum UTSStage {
    static func setHostname(_ name: String, calls: some StageCalls = KernelCalls()) throws {
        try step(2) { try check(calls.sethostname(name), "sethostname \"\(name)\"") }
    }
}
