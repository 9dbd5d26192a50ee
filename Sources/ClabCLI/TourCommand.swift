import ArgumentParser
import ClabCgroups
import ClabHost
import ClabLessons
import ClabRuntime
import ClabSpec
import Glibc

/// The guided walkthrough: one real container per stage, each running the command that shows
/// what the stage changed. Pauses between stages on a terminal.
struct TourCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tour", abstract: "Walk through every stage on the busybox image, one real container each.")

    @Flag(help: "Do not wait for Enter between stages.")
    var noPause = false

    @OptionGroup var cgroups: CgroupParentOption
    @OptionGroup var global: GlobalOptions

    /// What to run at each stage, and what to notice.
    static let steps: [(stage: Int, command: String, notice: String)] = [
        (1, "ls / && breakout", "/ is the image, yet breakout climbs out to the host's real /"),
        (2, "hostname tour && hostname", "the name changed inside; the host keeps its own"),
        (3, "ps", "the command is PID 1 and sees no host process"),
        (4, "breakout; wc -l /proc/self/mountinfo", "pivot_root left nothing to climb to: breakout is contained"),
        (5, "cat /proc/sysvipc/shm", "System V IPC is empty: the host's segments are elsewhere"),
        (6, "ip addr", "only lo: the host's network devices are gone"),
        (7, "id && cat /proc/self/uid_map", "root inside is uid 100000 outside"),
        (
            8,
            "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; for i in $(seq 20); do sleep 1 & done",
            "the kernel refused every fork beyond pids.max (8 here; default 512)"
        ),
        (
            9, "echo hello > /new && rm /bin/vi && ls /new; ls /bin/vi",
            "the write and the delete went to this container's own layer; the image's layer is unchanged"
        ),
        (
            10, "date >> /data/visits && cat /data/visits",
            "/data is the volume 'tour': it outlives the container (run the tour again; `clab volume rm tour`)"
        ),
        (
            11, "ip -4 -o addr show eth0; ip route; ping -c 1 -W 2 $(ip route | grep default | cut -d \" \" -f 3)",
            "eth0 on clab's bridge, a default route through it, and the bridge answers"
        ),
        (
            12,
            "grep -E \"^(CapEff|NoNewPrivs|Seccomp):\" /proc/self/status; mount -t tmpfs t /mnt || unshare -U true || echo both refused",
            "root keeps 14 capabilities (a80425fb), no_new_privs and a seccomp filter: mount and unshare are refused"
        ),
    ]

    /// Demonstrations whose last command fails on purpose: the status says the stage worked.
    static let expectedFailures: [Int: String] = [
        8: "the shell could not fork past pids.max, as the limit intends",
        9: "`ls /bin/vi` failed because this container deleted it, as it should",
    ]

    /// Says what a non-zero status means, so a demonstration that worked does not read as an error.
    static func exitNote(stage: Int, code: Int32) -> String {
        guard code != 0 else { return "" }
        if let why = expectedFailures[stage] { return " (exit \(code): \(why))" }
        return " (exit \(code): the command failed; the lines above say why)"
    }

    func run() throws {
        try Runtime.requireRoot()
        var runtime = Runtime(layout: global.layout)
        runtime.cgroupParent = try cgroups.resolved()
        let pause = !noPause && isatty(0) != 0
        print("clab tour: \(Self.steps.count) containers, each adding one kernel feature. Host: \(Host.hostname).\n")
        for step in Self.steps {
            let stage = try Stage.numbered(step.stage)
            var request = RunRequest(stage: stage, command: ["/bin/sh", "-c", step.command], hostname: nil)
            if stage.limitsResources { request.limits = CgroupLimits(pids: 8) }
            if stage.mountsVolumes {
                request.volumes = [VolumeRequest(source: .named("tour"), target: "/data", readOnly: false)]
            }
            let prepared = try runtime.prepare(request, log: { stderrLine("clab: \($0)") })
            print("━━ stage \(stage.number) · \(stage.title) ━━")
            print(Banner.text(for: prepared))
            let options =
                stage.mountsVolumes ? " -v tour:/data" : stage.limitsResources && stage.number == 8 ? " --pids 8" : ""
            print("$ clab step \(stage.number)\(options) -- sh -c '\(step.command)'")
            // Our stdout may be a pipe; flush before the container writes to the same one.
            fflush(nil)
            let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
            defer { close(devNull) }
            let result = try runtime.run(prepared, stdio: (devNull, 1, 2))
            let status = result.status
            for outcome in result.outcomes { print("clab: " + outcome) }
            print("→ \(step.notice)\(Self.exitNote(stage: step.stage, code: status.code))\n")
            if pause && step.stage < Self.steps.count {
                print("Press Enter for stage \(step.stage + 1)...", terminator: "")
                fflush(nil)
                _ = readLine()
            }
        }
        print("Next: `clab check \(Stage.all.count)` proves each property from inside and from the host;")
        print("`clab lessons` lists the lessons; `clab step 4` gives you a shell at stage 4.")
    }
}
