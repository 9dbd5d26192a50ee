import Foundation
import Glibc
import Testing

/// clab on a real cgroup v2 kernel. This host is cgroup v1 hybrid, so tests-vm/run-vm.sh boots
/// Debian's cloud kernel under qemu (software emulation) with cgroup2 on /sys/fs/cgroup and
/// runs a payload there as root; the payload's output comes back over the serial console and
/// the script exits with its status. About 5 s of boot and payload per test once the kernel
/// and initramfs are cached (the first run downloads the kernel and builds clab release in
/// .build-vm). Set CLAB_SKIP_VM=1 to skip.
extension Timing {
    @Suite("cgroup v2 in a VM", .serialized, needsRoot, vmEnabled)
    struct CgroupV2VMTests {
        /// The stage whose `clab check` runs inside the VM: 8, so the v2 driver is proven on a real
        /// unified hierarchy.
        static let checkStage = 8

        /// The payload of `clabCheckPassesOnCgroupV2`: first proof that the VM's hierarchy is v2
        /// with controllers delegated, then the stage's checks.
        static var checkPayload: String {
            """
            set -e
            grep -q '^cgroup2 /sys/fs/cgroup cgroup2 ' /proc/mounts && echo "cgroup2: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
            clab check \(checkStage)
            """
        }

        @Test(.timeLimit(.minutes(5)))
        func clabCheckPassesOnCgroupV2() throws {
            let out = try runVM(Self.checkPayload)
            #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
            #expect(out.stdout.contains("cgroup2: cpu memory pids"), "\(out.stdout)")
            #expect(out.stdout.contains("clab check \(Self.checkStage):"), "\(out.stdout)")
            #expect(
                out.stdout.range(of: #"all \d+ properties hold"#, options: .regularExpression) != nil, "\(out.stdout)")
            #expect(!out.stdout.contains("✗"), "\(out.stdout)")
        }

        /// The v2 driver's outcomes from memory.events and pids.events, its placement (/clab, since
        /// the VM's shell is in the root cgroup), and the no-internal-processes fallback when the
        /// caller sits in a cgroup that holds processes and delegates nothing.
        @Test(.timeLimit(.minutes(5)))
        func limitsStrikeAndAreReportedOnCgroupV2() throws {
            let out = try runVM(
                """
                clab step 8 --quiet --memory 32M -- sh -c 'x=0123456789; while :; do x=$x$x; done'; echo "bomb=$?"
                clab step 8 --quiet --pids 8 -- sh -c 'for i in $(seq 20); do sleep 1 & done 2>/dev/null'; echo "forks=$?"
                clab step 8 --quiet -- cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max
                mkdir /sys/fs/cgroup/caller && echo $$ > /sys/fs/cgroup/caller/cgroup.procs
                clab step 8 --quiet -- true; echo "fallback=$?"
                echo $$ > /sys/fs/cgroup/cgroup.procs && rmdir /sys/fs/cgroup/caller
                ls /sys/fs/cgroup/clab 2>/dev/null | wc -l | sed 's/^/left=/'
                """)
            #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
            #expect(out.stdout.contains("clab: killed by the memory limit (32.0 MiB): oom_kill "), "\(out.stdout)")
            #expect(out.stdout.contains("bomb=137"), "\(out.stdout)")
            #expect(out.stdout.contains("clab: the pids limit (8) refused "), "\(out.stdout)")
            #expect(out.stdout.contains("268435456\n512\n"), "\(out.stdout)")
            #expect(
                out.stdout.contains(
                    "cannot hand controllers to a child (cgroup v2's no-internal-processes rule); using /clab instead"),
                "\(out.stdout)")
            #expect(out.stdout.contains("fallback=0"), "\(out.stdout)")
            #expect(out.stdout.contains("left=0"), "\(out.stdout)")
        }

        /// The harness itself: the kernel's v2 memory controller kills a hog in a 32M cgroup and
        /// counts it in memory.events (one hog can count 2 kills: assert at least 1).
        @Test(.timeLimit(.minutes(5)))
        func memoryLimitKillsOnCgroupV2() throws {
            let out = try runVM(
                """
                cg=/sys/fs/cgroup/t
                mkdir $cg && echo 32M > $cg/memory.max
                sh -c "echo \\$\\$ > $cg/cgroup.procs; exec sh -c 'x=0123456789; while :; do x=\\$x\\$x; done'"
                echo "hog=$?"
                cat $cg/memory.events
                """)
            #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
            #expect(out.stdout.contains("hog=137"), "\(out.stdout)")
            let kills = out.stdout.split(separator: "\n").first { $0.hasPrefix("oom_kill ") }
                .flatMap { Int($0.dropFirst("oom_kill ".count)) }
            #expect((kills ?? 0) >= 1, "\(out.stdout)")
        }

        /// Stage 12's device allow-list on v2: clab's BPF_PROG_TYPE_CGROUP_DEVICE program on the
        /// container's cgroup. While a container runs, a shell of the VM's real root joins its
        /// cgroup and makes a block node on the VM's tmpfs (b *:* m allows mknod) but cannot
        /// open it: EPERM from the program, where the same open outside reaches the driver
        /// (ENXIO: the VM has no disk). /dev/null works; the cgroup is gone after.
        @Test(.timeLimit(.minutes(5)))
        func bpfDeviceProgramDeniesABlockDeviceOnCgroupV2() throws {
            let out = try runVM(
                """
                clab step 12 --quiet --net none -- sleep 4 &
                i=0; while [ -z "$(cat /sys/fs/cgroup/clab/*/cgroup.procs 2>/dev/null)" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
                cg=$(ls -d /sys/fs/cgroup/clab/*/ | head -1)
                sh -c "echo \\$\\$ > ${cg}cgroup.procs; mknod /tmp/sda b 8 0; echo mknod=\\$?; head -c1 /tmp/sda; echo block=\\$?; head -c1 /dev/null; echo null=\\$?"
                mknod /tmp/sda2 b 8 0; head -c1 /tmp/sda2; echo outside=$?
                wait; echo status=$?
                rm -f /tmp/sda /tmp/sda2
                ls /sys/fs/cgroup/clab 2>/dev/null | wc -l | sed 's/^/left=/'
                """, modules: "overlay")
            #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
            #expect(out.stdout.contains("mknod=0"), "\(out.stdout)")
            #expect(out.stdout.contains("head: /tmp/sda: Operation not permitted\nblock=1"), "\(out.stdout)")
            #expect(out.stdout.contains("null=0"), "\(out.stdout)")
            #expect(out.stdout.contains("head: /tmp/sda2: No such device or address\noutside=1"), "\(out.stdout)")
            #expect(out.stdout.contains("status=0"), "\(out.stdout)")
            #expect(out.stdout.contains("left=0"), "\(out.stdout)")
        }

        /// A detached container on v2 (tests-vm/lifecycle-cgroup-v2.sh): `clab exec` sees its
        /// hostname and runs in its cgroup, `clab pause` freezes it through cgroup.freeze (the
        /// kernel says frozen 1, no CPU time passes, exec is refused), `clab unpause` thaws it,
        /// and `rm -f` of a paused container leaves no cgroup. Any failed check in the VM ends
        /// the script with status 1 and a LIFECYCLE FAILED line, which fails this test.
        @Test(.timeLimit(.minutes(5)))
        func execPauseAndUnpauseOnCgroupV2() throws {
            let out = try runVM(
                "sh lifecycle.sh", adds: [repoDir + "/tests-vm/lifecycle-cgroup-v2.sh:/root/lifecycle.sh"])
            #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
            #expect(!out.stdout.contains("LIFECYCLE FAILED"), "\(out.stdout)")
            for line in [
                "ok: exec sees hostname vmweb", "ok: exec runs in cgroup 0::/clab/",
                "ok: paused: cgroup.freeze 1, frozen 1", "ok: no CPU time while paused",
                "ok: exec refused: clab: container ", "is paused: its processes are frozen",
                "ok: unpaused: frozen 0", "ok: rm -f of a paused container leaves nothing", "LIFECYCLE OK",
            ] {
                #expect(out.stdout.contains(line), "\(line) missing from:\n\(out.stdout)")
            }
        }

        /// The harness reports the payload's exit status and stops a payload that runs too long.
        @Test(.timeLimit(.minutes(5)))
        func statusAndTimeout() throws {
            #expect(try runVM("echo out; exit 7").status == 7)
            let slow = try runVM("sleep 600", timeout: 10)
            #expect(slow.status == 124)
            #expect(slow.stderr.contains("timed out after 10s"), "\(slow.stderr)")
        }
    }
}

/// The repository (this file lives in Tests/ClabSystemTests/).
private let repoDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Runs `payload` (shell commands) as root in the cgroup v2 VM; stdout is the payload's output,
/// stderr run-vm.sh's own lines (timings, errors). CLAB_VM_BIN, if set, names a directory of
/// prebuilt release clab and clab-init; otherwise run-vm.sh builds them in .build-vm.
private func runVM(_ payload: String, timeout: Int = 120, modules: String = "", adds: [String] = []) throws -> Output {
    try runProcess(
        ["/bin/bash", repoDir + "/tests-vm/run-vm.sh", "--timeout", "\(timeout)", "--modules", modules]
            + adds.flatMap { ["--add", $0] } + ["--", payload])
}

private let vmEnabled = ConditionTrait.enabled(
    if: ProcessInfo.processInfo.environment["CLAB_SKIP_VM"] == nil, "CLAB_SKIP_VM is set")
