import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// podman (Debian's 4.3, with conmon) driving `clab-runtime` in runc's place. Everything podman
/// keeps lives in a temporary directory (storage on vfs, its run root, its tmpdir), the image is
/// clab's own busybox (exported as an OCI layout, copied in with skopeo: nothing is pulled),
/// containers get no network, and their cgroups go beneath this process's own cgroup
/// (`--cgroup-parent` relative, conmon left where it is). Container root is uid 100000 on the
/// host, as clab always makes it: `--uidmap`/`--gidmap` say so to podman, which then owns the
/// rootfs copy by that range.
@Suite(
    "podman drives clab-runtime", needsRoot,
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: "/usr/bin/podman"),
        "needs Debian's podman (make test installs it)"), .serialized)
struct PodmanTests {
    static let dir = "/tmp/clab-podman-\(getpid())"
    static let runtimeRoot = dir + "/clab-runtime-state"
    static let cgroupParent = "clab-podman-test-\(getpid())"
    static let binary = Path.dirname(TestEnv.clab) + "/clab-runtime"
    static let podmanPath = "/usr/bin/podman"
    /// `clab-runtime --root DIR "$@"`: podman 4.3 gives its `--runtime-flag`s to the calls conmon
    /// makes, but not to the `delete` of its cleanup process (and clears the environment), so a
    /// state root other than the default is set the way one sets it for runc: in the command.
    static let wrapper = dir + "/clab-runtime"

    /// Where podman and skopeo keep things by default: none may appear because of these tests.
    static let hostDirs = [
        "/var/lib/containers", "/var/cache/containers", "/run/containers", "/etc/containers/networks",
    ]
    static let hostDirsBefore = Set(hostDirs.filter { FileManager.default.fileExists(atPath: $0) })

    /// The image in podman's storage, once; the whole directory goes when the test process exits.
    static let setup: Result<Void, Error> = Result {
        _ = hostDirsBefore
        try TestEnv.ensureImage()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit {
            let dir = "/tmp/clab-podman-\(getpid())"
            // Whatever a failed test left running, then podman's own mounts (shm), then the files.
            _ = try? runProcess(
                ["/usr/bin/timeout", "60", PodmanTests.podmanPath] + PodmanTests.global + ["rm", "-af"])
            _ = Mounts.unmountAll(under: dir)
            try? FileManager.default.removeItem(atPath: dir)
        }
        try "#!/bin/sh\nexec \(binary) --root \(runtimeRoot) \"$@\"\n".write(
            toFile: wrapper, atomically: true, encoding: .utf8)
        guard chmod(wrapper, 0o755) == 0 else { throw SyscallError("chmod \(wrapper)") }
        let export = try clab("image", "export", "busybox", dir + "/busybox-oci")
        guard export.status == 0 else { throw ClabError("clab image export: \(export.stderr)") }
        // skopeo keeps a blob cache in /var/lib/containers: an empty /var/lib of its own keeps
        // it off the host. The image is named localhost/busybox, so no short name is resolved
        // (that leaves a lock file in /var/cache/containers).
        let copy = try runProcess([
            "/usr/bin/unshare", "-m", "/bin/sh", "-c", "mount -t tmpfs tmpfs /var/lib && exec \"$0\" \"$@\"",
            "/usr/bin/skopeo", "copy", "--quiet", "oci:\(dir)/busybox-oci:latest",
            "containers-storage:[vfs@\(dir)/storage+\(dir)/runroot]localhost/busybox:latest",
        ])
        guard copy.status == 0 else { throw ClabError("skopeo copy: \(copy.stderr)") }
    }

    /// podman's global options: its state in `dir`, cgroupfs, clab-runtime with its own state root.
    static var global: [String] {
        [
            "--root", dir + "/storage", "--runroot", dir + "/runroot", "--tmpdir", dir + "/tmp",
            "--network-config-dir", dir + "/networks",
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
            "--runtime", wrapper,
        ]
    }

    /// `podman run`'s options: no network, cgroups beneath ours, limits within this machine's
    /// hard limits (podman's default nofile/nproc are above them), clab's id range.
    static let runOptions = [
        "--network", "none", "--cgroups", "no-conmon", "--cgroup-parent", cgroupParent,
        "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
        "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536",
    ]

    @discardableResult
    func podman(_ args: [String], stdin: String = "") throws -> Output {
        try Self.setup.get()
        return try runProcess(
            ["/usr/bin/timeout", "120", Self.podmanPath] + Self.global + args, stdin: stdin)
    }

    /// clab-runtime's containers (podman's ids are their names), cgroups named for podman's, and
    /// podman's default directories on the host that were not there before.
    func leftovers() throws -> (containers: String, cgroups: String) {
        let list = try runProcess([Self.binary, "--root", Self.runtimeRoot, "list", "-q"])
        let found = try runProcess([
            "/usr/bin/find", "/sys/fs/cgroup", "-name", "*libpod*", "-o", "-name", Self.cgroupParent + "*",
        ])
        let appeared = Self.hostDirs.filter {
            FileManager.default.fileExists(atPath: $0) && !Self.hostDirsBefore.contains($0)
        }
        return (list.stdout, found.stdout + appeared.joined(separator: "\n"))
    }

    @Test func runRmEchoesAndPassesTheExitStatus() throws {
        let out = try podman(["run", "--rm"] + Self.runOptions + ["localhost/busybox:latest", "echo", "hi"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "hi\n")
        let failing = try podman(
            ["run", "--rm"] + Self.runOptions + ["localhost/busybox:latest", "sh", "-c", "id -u; exit 7"])
        #expect(failing.status == 7, "\(failing.stderr)")
        #expect(failing.stdout == "0\n")
        #expect(try podman(["ps", "-aq"]).stdout.isEmpty)
        let left = try leftovers()
        #expect(left.containers.isEmpty)
        #expect(left.cgroups.isEmpty, "\(left.cgroups)")
    }

    @Test func detachedThenExecStopAndRm() throws {
        let started = try podman(["run", "-d"] + Self.runOptions + ["localhost/busybox:latest", "sleep", "100"])
        #expect(started.status == 0, "\(started.stderr)")
        let id = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(id.count == 64, "\(started.stdout)")
        // The same container seen through clab-runtime: running, its init is podman's sleep.
        let state = try runProcess([Self.binary, "--root", Self.runtimeRoot, "state", id])
        #expect(state.stdout.contains("\"status\": \"running\""), "\(state.stdout)")
        let exec = try podman(["exec", id, "sh", "-c", "echo exec-in-$(cat /proc/1/cmdline | tr '\\0' ' '); exit 3"])
        #expect(exec.status == 3, "\(exec.stderr)")
        #expect(exec.stdout == "exec-in-sleep 100\n")
        // sleep as PID 1 ignores SIGTERM: podman stop falls back to SIGKILL after -t.
        let stop = try podman(["stop", "-t", "1", id])
        #expect(stop.status == 0, "\(stop.stderr)")
        #expect(try podman(["ps", "-a", "--format", "{{.Status}}", "--filter", "id=" + id]).stdout.hasPrefix("Exited"))
        // podman 4.3's rm can report its own known race on the shm tmpfs it mounts for the
        // container (podman #11594, fixed in 4.4 by #16159): "unlinkat .../userdata/shm: device or
        // resource busy", status 125, and yet the container is removed. runc, in clab-runtime's
        // place on this machine, gets the same error (1 rm of 3 right after stop; clab-runtime 4 of 15). Only
        // that error is let through, and then what it could hide is checked: podman knows no such
        // container, its storage and the shm mount are gone.
        let rm = try podman(["rm", id])
        let podmanRace = rm.status == 125 && rm.stderr.contains("/userdata/shm: device or resource busy")
        #expect(rm.status == 0 || podmanRace, "\(rm.stderr)")
        #expect(try podman(["ps", "-aq", "--filter", "id=" + id]).stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: Self.dir + "/storage/vfs-containers/" + id))
        #expect(!(try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)).contains(id))
        let left = try leftovers()
        #expect(left.containers.isEmpty)
        #expect(left.cgroups.isEmpty, "\(left.cgroups)")
    }

    @Test func runItThroughTheConsoleSocket() throws {
        try Self.setup.get()
        // A terminal for podman (python3's pty): podman -it hands conmon a console socket, and
        // clab-runtime sends the container's pty master over it.
        let driver = Self.dir + "/pty-driver.py"
        try """
        import os, pty, select, sys, time
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(sys.argv[1], sys.argv[1:])
        out, sent, end = b"", False, time.time() + 60
        while time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
            if not sent and b"# " in out:
                os.write(fd, b"echo in-tty-$((6*7)); tty; exit 4\\r")
                sent = True
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(out.decode(errors="replace"))
        sys.exit(os.waitstatus_to_exitcode(status))
        """.write(toFile: driver, atomically: true, encoding: .utf8)
        let out = try runProcess(
            ["/usr/bin/timeout", "120", "/usr/bin/python3", driver, Self.podmanPath] + Self.global
                + ["run", "-it", "--rm"] + Self.runOptions + ["localhost/busybox:latest", "sh"])
        #expect(out.status == 4, "\(out.stdout) \(out.stderr)")
        #expect(out.stdout.contains("in-tty-42"), "\(out.stdout)")
        let left = try leftovers()
        #expect(left.containers.isEmpty)
        #expect(left.cgroups.isEmpty, "\(left.cgroups)")
    }
}
