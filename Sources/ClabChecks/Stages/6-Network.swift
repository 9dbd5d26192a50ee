/// Stage 6: the container's network namespace has only lo (from stage 11 its own eth0 too),
/// up, and no route anywhere until stage 11 connects it.
enum NetworkProbes {
    /// The devices the ipip, sit, gre, vti and ip6 tunnel modules create in every network
    /// namespace (unless net.core.fb_tunnels_only_for_init_net is set).
    static let tunnelFallbackDevices: Set<String> = [
        "tunl0", "sit0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6tnl0", "ip6gre0", "ip6_vti0",
    ]

    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        guard c.stage.has(.net) else { return [] }
        var r = ProbeList()
        let f = c.facts
        let connected = c.stage.connectsNetwork
        let all = (f["netdevs"] ?? "").split(separator: " ").map(String.init)
        // A loaded ipip/sit/gre/vti module gives every new namespace its fallback device
        // (tunl0, sit0, ...): the kernel's own, down, never one of the host's.
        let fallbacks = all.filter(tunnelFallbackDevices.contains)
        let devs = all.filter { !tunnelFallbackDevices.contains($0) }
        // From stage 11 the container has its own eth0 too, still none of the host's.
        let expected = connected ? ["eth0", "lo"] : ["lo"]
        let besides =
            fallbacks.isEmpty ? "" : " (besides the kernel's tunnel fallbacks \(fallbacks.joined(separator: " ")))"
        r.add(
            "net.devices-own-only", 6, (connected ? "only lo and its own eth0 exist" : "only lo exists") + besides,
            devs.sorted() == expected, "inside /proc/net/dev: \(all.joined(separator: " "))")
        let lo = f["lo"] ?? ""
        r.add("net.lo-up", 6, "lo is up", lo.contains(",UP") || lo.contains("<UP"), lo.isEmpty ? "no lo" : lo)
        if !connected {
            r.add(
                "net.no-route", 6, "no route anywhere", f["routes"] == "0",
                "inside: `ip -4 route` prints \(f["routes"] ?? "?") routes")
        }
        return r.results
    }
}
