import ClabHost
import ClabImages
import ClabRuntime
import ClabSys
import Glibc

/// Stage 9: the root is an overlay of the layers; writes and deletes land in the upper
/// directory; the layers themselves are unchanged (their digests still match).
enum OverlayProbes {
    static func evaluate(_ c: ProbeContext) throws -> [ProbeResult] {
        guard let overlay = c.spec.overlay else { return [] }
        var r = ProbeList()
        let layers = try c.runtime.images.layers(c.image)
        let base = c.spec.idMapping?.host ?? 0
        let tag = c.tag
        let root = Mounts.parse((FS.read("/proc/\(c.pid)/mountinfo") ?? "")).last { $0.mountPoint == "/" }
        r.add(
            "overlay.root", 9,
            "the root is an overlay of the image's \(layers.count) layer\(layers.count == 1 ? "" : "s")",
            root?.fsType == "overlay" && overlay.lowers.allSatisfy { root?.superOptions.contains($0) == true },
            "container's /: \(root?.fsType ?? "?") with lowerdir=\(overlay.lowers.map { Path.basename($0).prefix(12) }.joined(separator: ":"))"
        )
        // The container wrote the upper directory: no symlink in it is followed.
        let written = FS.lstat(overlay.upper, beneath: "/." + tag) != nil
        let inLayers = overlay.lowers.contains { FS.lstat($0, beneath: "/." + tag) != nil }
        r.add(
            "overlay.writes-upper", 9, "writes land in the container's upper layer", written && !inLayers,
            "/.\(tag) is in upperdir: \(written ? "yes" : "no"); in a layer: \(inLayers ? "YES" : "no")")
        let hosts = FS.lstat(overlay.upper, beneath: "/etc/hosts")
        let whiteout = hosts.map { ($0.st_mode & S_IFMT) == S_IFCHR && $0.st_rdev == 0 } ?? false
        let stillInLayer = overlay.lowers.contains { FS.lstat($0, beneath: "/etc/hosts") != nil }
        r.add(
            "overlay.whiteout", 9, "deleting a layer's file leaves a whiteout", whiteout && stillInLayer,
            "rm /etc/hosts inside: upperdir/etc/hosts is \(whiteout ? "a character device 0/0" : "not a whiteout"); the layer still has it: \(stillInLayer)"
        )
        // The layers the container used (the copies owned by the mapped range) still hash to
        // their digests once the shift is taken off.
        var unchanged: [String] = []
        for (digest, lower) in zip(layers.reversed(), overlay.lowers) {
            if let d = try? CanonicalTar(root: lower, idShift: base).digest().digest, d == digest {
                unchanged.append(digest)
            }
        }
        r.add(
            "overlay.layers-unchanged", 9, "no layer changed", unchanged.count == layers.count,
            "\(unchanged.count) of \(layers.count) layers still hash to their digest (\(layers.map { String($0.prefix(19)) }.joined(separator: ", ")))"
        )
        return r.results
    }
}
