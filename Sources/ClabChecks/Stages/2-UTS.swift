import ClabHost
import ClabRuntime

/// Stage 2: the hostname is the container's, and one set inside stays inside; from stage 12
/// setting it is refused instead (no CAP_SYS_ADMIN), a stage-12 line.
enum UTSProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        guard c.stage.has(.uts) else { return [] }
        var r = ProbeList()
        let f = c.facts
        let tag = c.tag
        let before = f["hostname_before"] ?? "?"
        r.add(
            "uts.hostname-own", 2, "hostname is the container's", before == c.spec.hostname,
            "inside: \(before); expected \(c.spec.hostname)")
        let after = f["hostname_after"] ?? "?"
        let hostNow = Host.hostname
        if c.stage.hardens {
            // Stage 12 took CAP_SYS_ADMIN: sethostname is refused, as in a Docker container.
            r.add(
                "hardening.sethostname-refused", 12, "setting the hostname is refused (no CAP_SYS_ADMIN)",
                f["hostname_after"] == nil && hostNow == c.host.hostname,
                "inside: `hostname \(tag)` \(f["hostname_after"] == nil ? "failed" : "succeeded: \(after)"); host: \(hostNow)"
            )
        } else {
            r.add(
                "uts.hostname-stays-inside", 2, "a hostname set inside stays inside",
                after == tag && hostNow == c.host.hostname,
                "inside after `hostname \(tag)`: \(after); host: \(hostNow)")
        }
        return r.results
    }
}
