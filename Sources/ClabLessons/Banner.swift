import ClabNetwork
import ClabRuntime
import ClabSpec
import ClabSys

/// The text clab prints before a container starts: what this stage adds, the kernel calls
/// behind it, and the util-linux commands an expert would type for the same container. The
/// lines of stages 7, 8, 11 and 12 are theirs, in `Stages/N-Name.swift`; the one `unshare`
/// command line (`byHand`) is built here from the catalogue's namespaces, across stages.
public enum Banner {
    public static func text(for prepared: PreparedContainer) -> String {
        let spec = prepared.spec
        let stage = spec.stage
        var lines = ["clab stage \(stage.number) · \(stage.title): \(stage.adds)"]
        lines += cgroupLines(prepared)
        lines.append(
            "  kernel:  \(stage.kernel.replacing("<rootfs>", with: rootForHand(spec)).replacing("<id>", with: spec.hostname))"
        )
        let cgroupByHand = cgroupByHandLines(prepared)
        lines += cgroupByHand
        lines.append((cgroupByHand.isEmpty ? "  by hand: " : "           ") + "export ROOT=\(Self.rootForHand(spec))")
        lines.append("           \(byHand(spec))")
        lines += networkLines(prepared)
        lines += userLines(spec)
        lines += hardeningLines(spec)
        if stage.number < Stage.all.count {
            lines.append(
                "  next:    clab step \(stage.number + 1) adds the \(Stage.all[stage.number].title); read `clab lesson \(stage.number)`"
            )
        } else {
            lines.append("  read:    clab lesson \(stage.number)")
        }
        return lines.joined(separator: "\n")
    }

    /// The directory the by-hand commands build the root in: the image itself, or from stage 9
    /// an empty mount point for the overlay.
    static func rootForHand(_ spec: ContainerSpec) -> String {
        spec.overlay == nil ? spec.imageRoot : spec.rootfsMountPoint
    }

    /// The whole container as one util-linux command line, with the image's root in $ROOT.
    public static func byHand(_ spec: ContainerSpec) -> String {
        let stage = spec.stage
        let root = "$ROOT"
        guard stage.number > 1 else { return "chroot \(root) /bin/sh" }
        var flags: [String] = []
        if spec.ownsUserNamespace, let m = spec.idMapping {
            flags.append("--map-users=\(m.host),\(m.inside),\(m.count) --map-groups=\(m.host),\(m.inside),\(m.count)")
        }
        if stage.has(.uts) { flags.append("--uts") }
        if stage.has(.ipc) { flags.append("--ipc") }
        if stage.has(.net) && spec.network == .own { flags.append("--net") }
        if stage.has(.mnt) { flags.append("--mount --propagation private") }
        if stage.has(.pid) { flags.append("--pid --fork") }
        if spec.hardening?.cgroupNamespace == true { flags.append("--cgroup") }
        if let t = spec.hardening?.timeOffsets {
            flags.append("--time --monotonic \(t.monotonic) --boottime \(t.boottime)")
        }
        var script = ["hostname \(spec.hostname)"]
        if stage.has(.net) && spec.network == .own { script.append("ip link set lo up") }
        if stage.has(.mnt) {
            script += [
                spec.overlay.map { "mount -t overlay overlay -o \($0.options) \(root)" }
                    ?? "mount --bind \(root) \(root)",
                "mount -t proc proc \(root)/proc",
            ]
            for v in spec.volumes {
                script.append("mount --bind \(v.source) \(root)\(v.target)")
                if v.readOnly { script.append("mount -o remount,bind,ro \(root)\(v.target)") }
            }
            script += ["cd \(root)", "pivot_root . .", "umount -l ."]
            if let h = spec.hardening {
                // Two of the masks as examples (both files: a directory would get a tmpfs).
                script += ["/proc/keys", "/proc/timer_list"].filter(h.maskedPaths.contains).map {
                    "mount --bind /dev/null \($0)"
                }
                script += h.readonlyPaths.prefix(1).map { "mount --bind -o ro \($0) \($0)" }
                if h.readOnlyRoot { script += ["mount -t tmpfs tmpfs /tmp", "mount -o remount,bind,ro /"] }
                let caps = h.capabilities.sorted().map { "+" + $0.name.lowercased() }.joined(separator: ",")
                let keep = caps.isEmpty ? "-all" : "-all," + caps
                script.append(
                    "exec setpriv --bounding-set=\(keep) --inh-caps=\(keep)\(h.noNewPrivileges ? " --no-new-privs" : "") /bin/sh"
                )
            } else {
                script.append("exec /bin/sh")
            }
        } else if stage.has(.pid) {
            // No mount namespace: the proc mount is the host's, so unmount it afterwards.
            return
                "unshare \(flags.joined(separator: " ")) sh -c '\((script + ["mount -t proc proc \(root)/proc", "chroot \(root) /bin/sh"]).joined(separator: " && ")); umount \(root)/proc'"
        } else {
            script.append("exec chroot \(root) /bin/sh")
        }
        return "unshare \(flags.joined(separator: " ")) sh -c '\(script.joined(separator: " && "))'"
    }
}
