import ClabSys

/// Stage 6: a network namespace (CLONE_NEWNET): its own interfaces, routes, firewall and
/// sockets. It starts with only a loopback device, and that one down. Stage 11 adds a veth.
enum NetworkStage {
    static func bringUpLoopback(calls: some StageCalls = KernelCalls()) throws {
        try step(6) { try check(calls.linkUp("lo"), "ip link set lo up (SIOCSIFFLAGS)") }
    }
}
