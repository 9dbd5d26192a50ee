import ClabChecks
import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Glibc
import Testing

/// The escape matrix, run for real, every cell asserted. The expected values are reasoned here
/// from what each stage adds, not copied from a run; where the answer depends on this kernel
/// (no /proc/kcore, no module support) the host is asked first and the reasoning says why.
@Suite("escape matrix", needsRoot, .serialized)
struct EscapeMatrixTests {
    init() throws { try TestEnv.ensureImage() }

    /// What this machine has, which the containers cannot change.
    struct HostFacts {
        /// CONFIG_PROC_KCORE: without it /proc/kcore is missing everywhere (ENOENT, "host").
        let kcore = FS.exists("/proc/kcore")
        /// CONFIG_MAGIC_SYSRQ.
        let sysrq = FS.exists("/proc/sysrq-trigger")
        /// CONFIG_MODULES: without it init_module is not a system call here (ENOSYS, "host").
        let modules = FS.exists("/proc/modules")
        /// Stages 4 and 7 root their container in the state root's directory (a bind mount):
        /// shocker's forged ext handle {inode 2} names the root of the filesystem under it.
        let stateOnExt = (try? Host.output(["stat", "-f", "-c", "%t", TestEnv.root]))?.trimmed == "ef53"
    }

    @Test func everyCellOfTheMatrix() throws {
        let matrix = try EscapeMatrixRunner(runtime: TestEnv.runtime).run()
        let host = HostFacts()
        func cell(_ technique: String, _ column: String) -> EscapeCell? {
            matrix.rows.first { $0.technique == technique }?.cells[column]
        }
        /// One cell: its result, its errno (any of `errno`), and the layers that stopped it.
        func expect(
            _ technique: String, _ column: String, _ result: EscapeOutcome.Status, _ errno: Set<String?> = [nil],
            _ layers: [EscapeLayer] = [], sourceLocation: SourceLocation = #_sourceLocation
        ) {
            guard let found = cell(technique, column) else {
                Issue.record("no cell \(technique) × \(column)", sourceLocation: sourceLocation)
                return
            }
            let why = "\(technique) × \(column): \(found.text) — \(found.detail)"
            #expect(found.result == result, "\(why)", sourceLocation: sourceLocation)
            if result == .blocked {
                #expect(errno.contains(found.errno), "\(why)", sourceLocation: sourceLocation)
                #expect(found.layers == layers, "\(why)", sourceLocation: sourceLocation)
            }
        }
        /// Blocked on the host already: every column says so, with the host's own errno.
        func missingHere(_ technique: String, _ column: String, _ errno: String) {
            expect(technique, column, .blocked, [errno], [.host])
        }

        // Rows × columns present: the host, stages 4 and 7, and stage 12's two when it exists.
        #expect(matrix.rows.map(\.technique) == EscapeMatrix.techniques.map(\.name))
        let stage12 = Stage.all.count >= 12
        #expect(
            matrix.columns.map(\.key) == ["host", "stage4", "stage7"]
                + (stage12 ? ["stage12", "stage12-userns-host"] : []))

        // The host: root with every capability, no namespace. What the container columns are
        // measured against. ptrace, kill and the runtime's binary have no "outside" here.
        for t in ["mount", "unshare-mnt", "unshare-user", "proc-sys", "keyctl", "raw-socket"] {
            expect(t, "host", .open)
        }
        for t in ["runtime-exe", "ptrace", "kill"] { #expect(cell(t, "host") == nil) }

        // Stage 4: real root with every capability, in uts, pid and mount namespaces.
        let s4 = "stage4"
        expect("mount", s4, .open)  // its own mount namespace, but root may mount
        expect("unshare-mnt", s4, .open)  // CAP_SYS_ADMIN
        expect("unshare-user", s4, .open)  // nobody stops it before stage 12's seccomp
        // CAP_DAC_READ_SEARCH: any inode of the filesystem under the bind-mounted root.
        if host.stateOnExt { expect("shocker", s4, .open) }
        // Nothing outside the pid namespace is visible: not the runtime, not the test runner (the
        // target: kill and ptrace say ESRCH, and its /proc/PID/exe does not exist).
        expect("runtime-exe", s4, .blocked, ["ENOENT"], [.pidNamespace])
        for t in ["ptrace", "kill"] { expect(t, s4, .blocked, ["ESRCH"], [.pidNamespace]) }
        expect("proc-sys", s4, .open)  // core_pattern is global: the host's (written with its own value)
        if host.sysrq { expect("sysrq", s4, .open) } else { missingHere("sysrq", s4, "ENOENT") }
        if host.kcore { expect("kcore", s4, .open) } else { missingHere("kcore", s4, "ENOENT") }
        // No device policy of clab's before stage 12: exactly what the machine allows its root.
        let hostMknod = try #require(cell("mknod", "host"))
        #expect(cell("mknod", s4)?.result == hostMknod.result && cell("mknod", s4)?.errno == hostMknod.errno)
        if hostMknod.result == .blocked { #expect(cell("mknod", s4)?.layers == [.host]) }
        if host.modules {
            expect("module", s4, .open)  // ENOEXEC: the kernel read the image
        } else {
            missingHere("module", s4, "ENOSYS")
        }
        expect("keyctl", s4, .open)  // keyrings are not namespaced
        expect("raw-socket", s4, .open)  // and on the host's network: no net namespace before stage 6
        // Stage 4's container has a devpts of its own: the probe types into a pty it opened
        // there, its own terminal (its session has no controlling one, pipes here). As root of
        // the host's user namespace it may (CAP_SYS_ADMIN); the host's terminal is not there.
        expect("tiocsti", s4, .open)

        // Stage 7: the same plus ipc, net and user namespaces: root is uid 100000 on the host.
        let s7 = "stage7"
        expect("mount", s7, .open)  // a tmpfs in a mount namespace its user namespace owns
        expect("unshare-mnt", s7, .open)  // CAP_SYS_ADMIN over its own user namespace suffices
        expect("unshare-user", s7, .open)  // nested user namespaces need nothing
        // No CAP_DAC_READ_SEARCH over the host: EPERM, or since 6.10 the relaxed check for a
        // mount it owns, which decodes only inside that mount's subtree: ESTALE for inode 2.
        if host.stateOnExt { expect("shocker", s7, .blocked, ["EPERM", "ESTALE"], [.userNamespace]) }
        expect("runtime-exe", s7, .blocked, ["ENOENT"], [.pidNamespace])
        for t in ["ptrace", "kill"] { expect(t, s7, .blocked, ["ESRCH"], [.pidNamespace]) }
        // /proc/sys files belong to the host's root, unmapped here: the owner's write bit is not ours.
        expect("proc-sys", s7, .blocked, ["EACCES"], [.userNamespace])
        if host.sysrq {
            expect("sysrq", s7, .blocked, ["EACCES"], [.userNamespace])
        } else {
            missingHere("sysrq", s7, "ENOENT")
        }
        if host.kcore {
            expect("kcore", s7, .blocked, ["EACCES", "EPERM"], [.userNamespace])
        } else {
            missingHere("kcore", s7, "ENOENT")
        }
        // Device nodes are refused in a user namespace, whatever the machine allows root.
        expect("mknod", s7, .blocked, ["EPERM"], [.userNamespace])
        #expect(cell("mknod", s7)?.detail.hasPrefix("mknod") == true)
        if host.modules {
            expect("module", s7, .blocked, ["EPERM"], [.userNamespace])
        } else {
            missingHere("module", s7, "ENOSYS")
        }
        expect("keyctl", s7, .open)  // the user namespace does not stop it: keyrings are global
        expect("raw-socket", s7, .open)  // CAP_NET_RAW over its own network namespace
        // TIOCSTI into a terminal that is not one's controlling terminal needs CAP_SYS_ADMIN
        // over the host's user namespace.
        expect("tiocsti", s7, .blocked, ["EPERM"], [.userNamespace])

        guard stage12 else { return }
        // Stage 12: stage 11 plus Docker's hardening: 14 capabilities, Docker's seccomp profile
        // (compiled for those capabilities), masked and read-only /proc paths, the device
        // allow-list; `--userns host` the same without the user namespace (Docker's default).
        #expect(matrix.seccomp["stage12"] == "Docker's default profile", "\(matrix.seccomp)")
        for c in ["stage12", "stage12-userns-host"] {
            // No CAP_SYS_ADMIN. Docker's profile refuses mount and unshare(CLONE_NEWNS) without it
            // too, with the same EPERM, so removing seccomp alone changes nothing: capabilities.
            expect("mount", c, .blocked, ["EPERM"], [.capabilities])
            expect("unshare-mnt", c, .blocked, ["EPERM"], [.capabilities])
            // A user namespace needs no capability: only seccomp (unshare without CAP_SYS_ADMIN).
            expect("unshare-user", c, .blocked, ["EPERM"], [.seccomp])
            // No CAP_DAC_READ_SEARCH; with every capability the forged handle still names nothing:
            // the root is an overlay, no mount of the host's disk is inside.
            expect("shocker", c, .blocked, ["EPERM"], [.capabilities, .overlay])
            expect("runtime-exe", c, .blocked, ["ENOENT"], [.pidNamespace])
            for t in ["ptrace", "kill"] { expect(t, c, .blocked, ["ESRCH"], [.pidNamespace]) }
            if !host.sysrq { missingHere("sysrq", c, "ENOENT") }
            if !host.kcore { missingHere("kcore", c, "ENOENT") }
            // init_module: Docker's profile refuses it without CAP_SYS_MODULE. Where the kernel has
            // modules the capability refuses with the same EPERM (so it is named, not seccomp): in a
            // user namespace even with it, as at stage 7. Without modules: ENOSYS behind seccomp.
            if host.modules {
                expect("module", c, .blocked, ["EPERM"], c == "stage12" ? [.userNamespace] : [.capabilities])
            } else {
                expect("module", c, .blocked, ["EPERM"], [.seccomp, .host])
            }
            // Keyrings are not namespaced: Docker's profile refuses keyctl and add_key outright.
            expect("keyctl", c, .blocked, ["EPERM"], [.seccomp])
            // CAP_NET_RAW is one of Docker's 14 (ping works), over the container's own netns.
            expect("raw-socket", c, .open)
            expect("tiocsti", c, .blocked, ["EPERM"], c == "stage12" ? [.userNamespace] : [.capabilities])
        }
        // With its user namespace, as at stage 7: the host's root owns /proc/sys; without it,
        // root is the owner and meets the read-only mount.
        expect("proc-sys", "stage12", .blocked, ["EACCES"], [.userNamespace])
        expect("proc-sys", "stage12-userns-host", .blocked, ["EROFS"], [.readOnlyPaths])
        if host.sysrq {
            expect("sysrq", "stage12", .blocked, ["EACCES"], [.userNamespace])
            expect("sysrq", "stage12-userns-host", .blocked, ["EROFS"], [.readOnlyPaths])
        }
        if host.kcore {
            // Masked: /dev/null over it, read before any permission matters.
            for c in ["stage12", "stage12-userns-host"] { expect("kcore", c, .blocked, [nil], [.maskedPaths]) }
        }
        // mknod: in the user namespace refused as at stage 7. Real root keeps CAP_MKNOD (Docker's
        // default) and meets the device allow-list, unless this machine already refuses its own
        // root the disk (then stage 4 shows it, and "host" is the honest answer: the allow-list
        // is proven where the kernel would open the device, in DeviceTests and the v2 VM).
        expect("mknod", "stage12", .blocked, ["EPERM"], [.userNamespace])
        let hostRefusesItsDisk = cell("mknod", "stage4")?.layers == [.host]
        expect("mknod", "stage12-userns-host", .blocked, ["EPERM"], [hostRefusesItsDisk ? .host : .devices])
    }

    /// Attribution from runs alone: a layer is named when removing it changed the result.
    @Test func attributionIsMeasuredNotLooked() {
        func o(_ status: EscapeOutcome.Status, _ errno: String? = nil, _ detail: String = "call") -> EscapeOutcome {
            EscapeOutcome(status: status, errno: errno, detail: detail)
        }
        let runs: [String: [String: EscapeOutcome]] = [
            "host": ["keyctl": o(.open), "module": o(.blocked, "ENOSYS", "init_module")],
            "stage4": ["keyctl": o(.open), "module": o(.blocked, "ENOSYS", "init_module")],
            "stage7": ["keyctl": o(.open), "module": o(.blocked, "ENOSYS", "init_module")],
            "stage12": ["keyctl": o(.blocked, "EPERM"), "module": o(.blocked, "EPERM", "init_module")],
            "stage12-unconfined": ["keyctl": o(.open), "module": o(.blocked, "ENOSYS", "init_module")],
            "stage12-unconfined-all-caps": ["keyctl": o(.open), "module": o(.blocked, "ENOSYS", "init_module")],
        ]
        let matrix = EscapeMatrix(runs: runs)
        let keyctl = matrix.rows.first { $0.technique == "keyctl" }
        #expect(keyctl?.cells["stage12"]?.layers == [.seccomp])
        #expect(keyctl?.cells["stage12"]?.text == "blocked EPERM (seccomp)")
        #expect(keyctl?.cells["stage7"]?.text == "OPEN")
        // Seccomp answers first; behind it, this kernel has no init_module at all.
        #expect(matrix.rows.first { $0.technique == "module" }?.cells["stage12"]?.layers == [.seccomp, .host])
    }

    @Test func parsesEscapeLines() {
        let parsed = EscapeOutcome.parse("mknod blocked EPERM open /tmp/.escape-blk-9 after mknod worked (vda, 254:0)")
        #expect(parsed?.name == "mknod")
        #expect(
            parsed?.outcome
                == EscapeOutcome(
                    status: .blocked, errno: "EPERM", detail: "open /tmp/.escape-blk-9 after mknod worked (vda, 254:0)")
        )
        #expect(parsed?.outcome.step == "open")
        #expect(EscapeOutcome.parse("kcore blocked - /proc/kcore is masked (/dev/null)")?.outcome.errno == nil)
        #expect(EscapeOutcome.parse("garbage") == nil)
    }
}
