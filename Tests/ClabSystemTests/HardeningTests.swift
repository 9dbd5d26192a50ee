import ClabChecks
import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Testing

@testable import ClabCLI

/// The fields of /proc/self/status a stage-12 container prints about itself.
private func statusLines(_ out: Output) -> [String: String] {
    var fields: [String: String] = [:]
    for line in out.stdout.split(separator: "\n") {
        let parts = line.split(separator: ":", maxSplits: 1)
        if parts.count == 2 { fields[String(parts[0])] = String(parts[1]).trimmed }
    }
    return fields
}

private let showStatus = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status"

@Suite("stage 12 · hardening", needsRoot)
struct Stage12Tests {
    @Test func everyPropertyHolds() throws {
        let r = try probe(12)
        for id in [
            "hardening.capabilities", "hardening.no-new-privs", "hardening.proc-keys-masked",
            "hardening.proc-sys-read-only", "hardening.cgroupns-root", "hardening.sethostname-refused",
            "hardening.mount-refused", "hardening.seccomp", "hardening.unshare-refused",
        ] {
            expectHolds(r, id)
        }
        // The wording says whose capability set it is.
        #expect(r["hardening.capabilities"]?.property == "root keeps only Docker's 14 capabilities")
        expectNamespaces(r, stage: 12)
    }

    @Test func capabilitiesAreDockersAndTheOptionsChangeThem() throws {
        try TestEnv.ensureImage()
        let plain = try clab("step", "12", "--quiet", "--", "sh", "-c", showStatus)
        let fields = statusLines(plain)
        #expect(plain.status == 0, "\(plain.stderr)")
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd"] { #expect(fields[set] == "00000000a80425fb", "\(set)") }
        #expect(fields["CapAmb"] == "0000000000000000")
        #expect(fields["NoNewPrivs"] == "1")

        let changed = try clab(
            "step", "12", "--quiet", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "--security-opt",
            "no-new-privileges=false", "--", "sh", "-c", showStatus)
        let c = statusLines(changed)
        #expect(c["CapEff"] == "0000000000000400" && c["CapBnd"] == "0000000000000400", "\(changed.stdout)")
        #expect(c["NoNewPrivs"] == "0")
    }

    @Test func seccompIsDockersByDefaultAndTheOptionsChangeIt() throws {
        try TestEnv.ensureImage()
        // The default filter refuses unshare without CAP_SYS_ADMIN; in a user namespace of
        // its own, container root could otherwise make another one.
        let plain = try clab("step", "12", "--quiet", "--", "sh", "-c", "\(showStatus); unshare -U true; echo rc=$?")
        #expect(statusLines(plain)["Seccomp"] == "2" && statusLines(plain)["Seccomp_filters"] == "1", "\(plain.stdout)")
        #expect(plain.stdout.contains("rc=1") && plain.stderr.contains("Operation not permitted"), "\(plain)")

        let unconfined = try clab(
            "step", "12", "--quiet", "--security-opt", "seccomp=unconfined", "--", "sh", "-c",
            "\(showStatus); unshare -U true; echo rc=$?")
        #expect(statusLines(unconfined)["Seccomp"] == "0")
        #expect(unconfined.stdout.contains("rc=0"), "capabilities alone do not stop a user namespace: \(unconfined)")

        // A profile of the learner's own, in Docker's format: mkdir refused with EACCES.
        let dir = TestEnv.root + "/seccomp-profiles"
        try FS.makeDirectories(dir)
        let profile = dir + "/no-mkdir.json"
        try FS.write(
            #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
            to: profile)
        let own = try clab(
            "step", "12", "--quiet", "--security-opt", "seccomp=" + profile, "--", "sh", "-c",
            "mkdir /tmp/d; echo rc=$?; touch /tmp/f && echo touch=ok")
        #expect(own.stderr.contains("Permission denied") && own.stdout.contains("rc=1\ntouch=ok"), "\(own)")
    }

    @Test func aBadProfileIsOneLineAndLeavesNothing() throws {
        try TestEnv.ensureImage()
        let root = TestEnv.root + "/bad-profile"
        let dir = TestEnv.root + "/seccomp-bad"
        try FS.makeDirectories(dir)
        for (text, message) in [
            (
                #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["nosuchcall"], "action": "SCMP_ACT_ALLOW"}]}"#,
                "syscall 'nosuchcall'"
            ),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [}"#, "line 1"),
        ] {
            let profile = dir + "/p.json"
            try FS.write(text, to: profile)
            let out = try runProcess([
                TestEnv.clab, "step", "12", "--root", root, "--quiet", "--security-opt", "seccomp=" + profile, "--",
                "true",
            ])
            #expect(out.status == 2, "\(out)")
            #expect(out.stderr.contains(message) && out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
            #expect((try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) ?? [] == [])
            #expect(Mounts.mounts(under: root).isEmpty)
        }
    }

    /// i386's socketcall passes socket's arguments in memory, out of a filter's sight: through
    /// `int $0x80` a container created the AF_VSOCK socket Docker's profile refuses.
    @Test func i386SocketcallCannotBypassTheSocketRules() throws {
        try TestEnv.ensureImage()
        let dir = TestEnv.root + "/vsock32"
        try FS.makeDirectories(dir)
        try FS.write(Self.vsock32, to: dir + "/vsock32.c")
        let cc = try runProcess(["/usr/bin/cc", "-static", "-O2", "-o", dir + "/vsock32", dir + "/vsock32.c"])
        #expect(cc.status == 0, "\(cc.stderr)")
        let out = try clab("step", "12", "--quiet", "-v", dir + ":/t:ro", "--", "/t/vsock32")
        #expect(
            out.stdout
                == "x86_64 socket: refused\ni386 socketcall(SYS_SOCKET): EPERM\ni386 socketcall(SYS_SOCKET, AF_INET): EPERM\ni386 socket(AF_INET): refused\n",
            "\(out)")
    }

    static let vsock32 = #"""
        #define _GNU_SOURCE
        #include <stdio.h>
        #include <sys/mman.h>
        #include <sys/socket.h>
        #include <sys/syscall.h>
        #include <unistd.h>
        #include <errno.h>
        static long i386call(long nr, long a, long b) {
            long ret;
            __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
            return ret;
        }
        int main(void) {
            long s64 = syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0);
            printf("x86_64 socket: %s\n", s64 >= 0 ? "fd" : "refused");
            unsigned int *args = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
            args[0] = AF_VSOCK; args[1] = SOCK_STREAM; args[2] = 0;
            long r = i386call(102, 1, (long)args);
            printf("i386 socketcall(SYS_SOCKET): %s\n", r >= 0 ? "fd" : r == -EPERM ? "EPERM" : "other error");
            args[0] = AF_INET;
            r = i386call(102, 1, (long)args);
            printf("i386 socketcall(SYS_SOCKET, AF_INET): %s\n", r >= 0 ? "fd" : r == -EPERM ? "EPERM" : "other error");
            r = i386call(359, AF_INET, SOCK_STREAM);  /* i386 socket(): ebx, ecx; edx unset (0 likely) */
            printf("i386 socket(AF_INET): %s\n", r >= 0 ? "fd" : "refused");
            return 0;
        }
        """#

    @Test func aSetuidProgramGainsNothingUnderNoNewPrivs() throws {
        try TestEnv.ensureImage()
        // nobody runs a setuid-root copy of `ids`: without no_new_privs it becomes root (and
        // gets root's capabilities back); with it, the bit is ignored.
        let script =
            "mkdir /tmp/s && cp /usr/bin/ids /tmp/s/ids && chmod 4755 /tmp/s/ids && su nobody -s /bin/sh -c /tmp/s/ids"
        let held = try clab("step", "12", "--quiet", "--", "sh", "-c", script)
        #expect(held.stdout == "uid=65534 euid=65534 CapEff=0000000000000000\n", "\(held)")
        let open = try clab(
            "step", "12", "--quiet", "--security-opt", "no-new-privileges=false", "--", "sh", "-c", script)
        #expect(open.stdout == "uid=65534 euid=0 CapEff=00000000a80425fb\n", "\(open)")
    }

    @Test func aBaseImageFromAnOlderClabIsRebuiltWithTheNewPrograms() throws {
        let root = TestEnv.root + "/old-base"
        #expect(try clab("step", "9", "--root", root, "--quiet", "--", "true").status == 0)
        // What an older clab built: no `ids`.
        let bin = root + "/images/busybox/rootfs/usr/bin/ids"
        #expect(unlink(bin) == 0)
        let out = try clab("step", "12", "--root", root, "--", "ids")
        #expect(out.stdout.hasPrefix("uid=0 euid=0"), "\(out)")
        #expect(out.stderr.contains("built by an older clab (no /usr/bin/ids): rebuilding it"), "\(out.stderr)")
        #expect(FS.exists(bin))
        let stale = try FileManager.default.contentsOfDirectory(atPath: root + "/images").filter {
            $0.hasPrefix(".tmp")
        }
        #expect(stale.isEmpty, "\(stale)")
    }

    /// A profile refusing everything made clab-init spin (execve, then exit_group, refused) and
    /// clab wait forever: it is refused before anything starts.
    @Test func aProfileThatRefusesExecveOrExitIsRefusedBeforeAnythingStarts() throws {
        try TestEnv.ensureImage()
        let root = TestEnv.root + "/refuse-all"
        let dir = TestEnv.root + "/refuse-all-profiles"
        try FS.makeDirectories(dir)
        for (text, call) in [
            (#"{"defaultAction": "SCMP_ACT_ERRNO"}"#, "execve"),
            (
                #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["exit_group"], "action": "SCMP_ACT_ERRNO"}]}"#,
                "exit_group"
            ),
        ] {
            try FS.write(text, to: dir + "/p.json")
            let out = try runProcess([
                "/usr/bin/timeout", "20", TestEnv.clab, "step", "12", "--root", root, "--quiet", "--security-opt",
                "seccomp=" + dir + "/p.json", "--", "true",
            ])
            #expect(out.status == 2, "\(out)")
            #expect(
                out.stderr.hasPrefix("clab: seccomp profile: it refuses \(call), which clab-init calls"),
                "\(out.stderr)")
            #expect((try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) ?? [] == [])
        }
    }

    @Test func aProfileThatIsAFIFOOrADeviceIsRefusedAtOnce() throws {
        let fifo = TestEnv.root + "/profile-fifo"
        unlink(fifo)
        #expect(mkfifo(fifo, 0o600) == 0)
        // Before, open() waited for a writer forever.
        for path in [fifo, "/dev/zero"] {
            let out = try runProcess(["/usr/bin/timeout", "10", TestEnv.clab, "seccomp", "check", path])
            #expect(out.status == 2, "\(path): \(out)")
            #expect(out.stderr.contains("cannot read it (not a regular file)"), "\(out.stderr)")
        }
    }

    /// Compiled filters are kept (libseccomp takes ~12 ms per start), one per profile and
    /// capability set, root's alone; a damaged one is compiled again, never installed.
    @Test func compiledFiltersAreKeptAndADamagedOneIsRecompiled() throws {
        try TestEnv.ensureImage()
        let root = TestEnv.root + "/seccomp-cache"
        let dir = root + "/seccomp"
        func filters() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".bpf") }.sorted()
        }
        let first = try clab("step", "12", "--root", root, "--quiet", "--", "true")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try clab("step", "12", "--root", root, "--quiet", "--", "true").status == 0)
        #expect(filters().count == 1, "\(filters())")
        var st = stat()
        #expect(stat(dir, &st) == 0 && st.st_mode & 0o777 == 0o700 && st.st_uid == 0)
        guard let file = filters().first else { return }
        let size = (try FileManager.default.attributesOfItem(atPath: dir + "/" + file)[.size] as? Int) ?? 0
        #expect(size > 0 && size % 8 == 0)
        try FS.write("junk!", to: dir + "/" + file)
        let again = try clab("step", "12", "--root", root, "--quiet", "--", "sh", "-c", showStatus)
        #expect(statusLines(again)["Seccomp"] == "2", "\(again)")
        #expect((try FileManager.default.attributesOfItem(atPath: dir + "/" + file)[.size] as? Int) == size)
        _ = try clab("step", "12", "--root", root, "--quiet", "--cap-add", "SYS_ADMIN", "--", "true")
        #expect(filters().count == 2, "another capability set, another filter: \(filters())")
    }

    @Test func userNamespaceHostIsRealRootHeldBack() throws {
        try TestEnv.ensureImage()
        let out = try clab(
            "step", "12", "--quiet", "--userns", "host", "--", "sh", "-c",
            "cat /proc/self/uid_map; \(showStatus); hostname x 2>&1; echo hostname=$?")
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.split(separator: "\n").first?.split(separator: " ") == ["0", "0", "4294967295"])
        #expect(statusLines(out)["CapEff"] == "00000000a80425fb")
        #expect(out.stdout.contains("hostname=1"), "real root without CAP_SYS_ADMIN: \(out.stdout)")

        // ALL is every capability clab holds itself (capset cannot give more without a user namespace).
        let ours = (FS.read("/proc/self/status") ?? "").split(separator: "\n").first { $0.hasPrefix("CapBnd:") }
        let all = try clab(
            "step", "12", "--quiet", "--userns", "host", "--cap-add", "ALL", "--", "sh", "-c", showStatus)
        #expect(all.status == 0, "\(all.stderr)")
        #expect(statusLines(all)["CapEff"] == ours.map { String($0.dropFirst(7)).trimmed }, "\(all.stdout)")
    }

    /// /dev/null & co. and the masks are binds of the host's own device inodes: real root keeps
    /// CAP_FOWNER and CAP_CHOWN, so a writable bind let it chmod the host's /dev/null. chmod to
    /// the mode it already has: on a writable bind it succeeds and changes nothing on the host.
    @Test func userNamespaceHostCannotChangeTheHostsDeviceNodes() throws {
        try TestEnv.ensureImage()
        let out = try clab(
            "step", "12", "--quiet", "--userns", "host", "--", "sh", "-c",
            "for f in /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /proc/keys; do chmod 666 $f 2>&1; done;"
                + " echo x > /dev/null && echo write=ok")
        #expect(out.status == 0, "\(out.stderr)")
        #expect(
            out.stdout.components(separatedBy: "Read-only file system").count == 8
                && out.stdout.hasSuffix("write=ok\n"),
            "\(out.stdout)")
    }

    @Test func userNamespaceHostOnlyRunsTheBuiltInImage() throws {
        try TestEnv.ensureImage()
        let out = try clab("step", "12", "--quiet", "--userns", "host", "--image", "busybox:other", "--", "true")
        #expect(out.status == 2)
        #expect(
            out.stderr
                == "clab: --userns host runs the image's programs as the host's real root: clab allows it only for its built-in busybox image, not 'busybox:other'\n"
        )
    }

    @Test func userNamespaceHostKeepsNoWritableLayer() throws {
        try TestEnv.ensureImage()
        let out = try clab("step", "12", "--quiet", "--userns", "host", "--name", "realroot", "--keep", "--", "true")
        #expect(out.status == 2)
        #expect(out.stderr.hasPrefix("clab: --keep with --userns host would leave real root's files"), "\(out.stderr)")
        #expect(!FS.exists(TestEnv.root + "/kept/realroot"))
    }

    /// An image's WORKDIR under /proc was the working directory before the read-only bind of
    /// /proc/sys: writes through "." reached the writable mount beneath it.
    @Test func aWorkdirUnderProcSysMeetsTheReadOnlyBind() throws {
        try TestEnv.ensureImage()
        let context = TestEnv.root + "/ctx-workdir-proc"
        try FS.makeDirectories(context)
        try FS.write("FROM busybox\nWORKDIR /proc/sys/net/ipv4\n", to: context + "/Clabfile")
        let tag = "procworkdir:1"
        let build = try clab("image", "build", "-t", tag, context)
        #expect(build.status == 0, "\(build.stderr)")
        defer { _ = try? clab("image", "rm", tag) }
        let out = try clab(
            "step", "12", "--quiet", "--image", tag, "--cap-add", "NET_ADMIN", "--", "sh", "-c",
            "cat ip_local_port_range > ip_local_port_range")
        #expect(out.stderr.contains("Read-only file system"), "\(out)")
    }

    @Test func inspectEscapesTerminalControls() {
        #expect(InspectCommand.escaped("\u{1b}[2Jok\u{9b}1m\u{7}") == "\\x1b[2Jok\\x9b1m\\x7")
    }

    @Test func readOnlyRootKeepsATmpfsTmp() throws {
        try TestEnv.ensureImage()
        let out = try clab(
            "step", "12", "--quiet", "--read-only", "--", "sh", "-c",
            "touch /x 2>&1; echo root=$?; touch /tmp/y && echo tmp=ok; grep ' /tmp ' /proc/self/mounts | cut -d' ' -f3")
        #expect(out.stdout.contains("Read-only file system") && out.stdout.contains("root=1"), "\(out.stdout)")
        #expect(out.stdout.contains("tmp=ok\ntmpfs"), "\(out.stdout)")
    }

    @Test func aTimeNamespaceShiftsBoottime() throws {
        try TestEnv.ensureImage()
        let hostUptime = Double((FS.read("/proc/uptime") ?? "").split(separator: " ").first ?? "") ?? 0
        let out = try clab(
            "step", "12", "--quiet", "--time-offset", "boottime=2d", "--", "sh", "-c",
            "cut -d' ' -f1 /proc/uptime; readlink /proc/self/ns/time")
        let lines = out.stdout.split(separator: "\n").map(String.init)
        let inside = Double(lines.first ?? "") ?? 0
        #expect(inside - hostUptime > 172_700 && inside - hostUptime < 172_860, "\(out.stdout)\(out.stderr)")
        #expect(lines.last != FS.readLink("/proc/self/ns/time"), "a time namespace of its own")
    }

    @Test(arguments: [
        (["--cap-add", "NOPE"], "clab: --cap-add NOPE: no such capability"),
        (["--cap-drop", "CAP_"], "clab: --cap-drop CAP_: no such capability"),
        (["--security-opt", "apparmor=x"], "clab: --security-opt apparmor=x: clab does not know this option"),
        (["--userns", "keep-id"], "clab: --userns keep-id: only `--userns host` is known"),
        (["--time-offset", "realtime=5"], "clab: --time-offset realtime=5: no clock 'realtime'"),
    ])
    func badOptionsSayWhatIsWrongAndLeaveNothing(args: [String], message: String) throws {
        try TestEnv.ensureImage()
        let root = TestEnv.root + "/bad-hardening"
        let out = try runProcess([TestEnv.clab, "step", "12", "--root", root, "--quiet"] + args + ["--", "true"])
        #expect(out.status == 2)
        #expect(out.stderr.hasPrefix(message) && out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) ?? [] == [])
        #expect(Mounts.mounts(under: root).isEmpty)
    }

    @Test func hardeningOptionsNeedStage12() throws {
        let out = try clab("step", "11", "--quiet", "--cap-drop", "ALL", "--", "true")
        #expect(out.status == 2)
        #expect(out.stderr.contains("need stage 12"), "\(out.stderr)")
    }
}
