import ClabSys

/// Stage 1: the root is the image; chroot alone does not hold (the breakout escapes until
/// stage 4's pivot_root).
enum ChrootProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        var r = ProbeList()
        let f = c.facts
        let pid = c.pid
        let marker = f["image_marker"] ?? ""
        // In-root: a plain /proc/PID/root/etc/... would follow the container's symlinks from the host's /.
        let hostSeesImage = FS.exists("/etc/clab-image", inRoot: "/proc/\(pid)/root")
        r.add(
            "chroot.image-root", 1, "/ is the image", marker == "clab busybox image" && hostSeesImage,
            "inside: /etc/clab-image reads \"\(marker)\"; host: /proc/\(pid)/root/etc/clab-image \(hostSeesImage ? "exists" : "is missing")"
        )
        let breakout = f["breakout_out"] ?? "no output"
        if c.stage.number < 4 {
            r.add(
                "chroot.breakout-escapes", 1, "chroot is not a jail: breakout escapes (stage 4 stops it)",
                f["breakout_status"] == "0", breakout)
        } else {
            r.add("chroot.breakout-contained", 1, "breakout is contained", f["breakout_status"] == "1", breakout)
        }
        return r.results
    }
}
