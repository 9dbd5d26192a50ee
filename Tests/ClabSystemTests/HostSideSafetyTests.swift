import ClabSpec
import ClabSys
import Foundation
import Glibc
import Testing

@testable import ClabCgroups
@testable import ClabChecks
@testable import ClabHost
@testable import ClabRuntime

/// Issue 8: what clab does on the host side against a hostile container — its checkers, its
/// walks of upper directories and layers — reaches nothing of the host's.
@Suite("host side: verifiers and walks stay out of the host", needsRoot)
struct HostSideSafetyTests {
    let unique = UUID().uuidString.prefix(8).lowercased()

    /// The lab verifier used to run `nsenter ... cat` (the container's /bin/cat, with every host
    /// capability) and the image's /usr/bin/breakout. A container that replaced both with a
    /// script recording its uid_map must find its markers empty, and the verdict still right.
    /// (The markers exist beforehand, writable by all: host root, unmapped in the container's
    /// user namespace, may not create files on its overlay, but may append; the old code left
    /// "0 0 4294967295", the host's uid_map, in /ran-cat.)
    @Test func labVerifierRunsNothingFromTheContainer() throws {
        try TestEnv.ensureImage()
        let runtime = TestEnv.runtime
        let script = """
            rm -f /bin/cat /usr/bin/breakout
            for f in /bin/cat /usr/bin/breakout; do
              : > /ran-${f##*/} && chmod 666 /ran-${f##*/}
              printf '#!/bin/sh\\nread m < /proc/self/uid_map; echo "$m" >> /ran-${0##*/}\\nexit 1\\n' > $f && chmod 755 $f
            done
            echo READY
            read line
            """
        let request = RunRequest(stage: try Stage.numbered(9), command: ["/bin/sh", "-c", script])
        let prepared = try runtime.prepare(request, log: { _ in })
        let session = try ContainerSession(prepared: prepared, runtime: runtime)
        defer { session.finish() }
        _ = try session.readFacts()
        let upper = try #require(prepared.spec.overlay?.upper)
        #expect(FS.lstat(upper, beneath: "/bin/cat") != nil, "the trap is not set")
        let results = try LabVerifiers.verify(lab: 1, pid: session.pid)
        for marker in ["/ran-cat", "/ran-breakout"] {
            let size = FS.lstat(upper, beneath: marker).map { Int($0.st_size) }
            #expect(size == 0, "the container's \(marker.dropFirst(5)) ran: \(FS.read(upper + marker) ?? "")")
        }
        // A stage-9 container is everything lab 1 asks for, but not made by hand: every other
        // property is seen without running the container's programs.
        for result in results where result.id != "made-by-hand" {
            #expect(result.passed, "\(result.id) (\(result.property)): \(result.evidence)")
        }
        #expect(results.first { $0.id == "made-by-hand" }?.passed == false)
        #expect(results.count == 10)
    }

    /// /proc/PID/root/etc/clab-image as a plain path follows an absolute symlink `etc -> DIR`
    /// from the host's root: the verifier must look inside the process's root instead.
    @Test func verifierReadsFilesInsideTheProcessRoot() throws {
        let root = TestEnv.root + "/inroot-\(unique)"
        let hostDir = TestEnv.root + "/inroot-host-\(unique)"
        defer {
            try? FS.removeTree(root)
            try? FS.removeTree(hostDir)
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: hostDir, withIntermediateDirectories: true)
        try "clab busybox image\n".write(toFile: hostDir + "/clab-image", atomically: false, encoding: .utf8)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: root + "/busybox")
        try FileManager.default.createSymbolicLink(atPath: root + "/etc", withDestinationPath: hostDir)
        // Our own spawn, not Foundation's Process (whose child handling raced other suites here).
        var pid: pid_t = 0
        let rc = spawnWithDefaultSignals(
            &pid, ["/usr/sbin/chroot", root, "/busybox", "sleep", "30"], environment: [:], actions: nil)
        #expect(rc == 0)
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        #expect(eventually { FS.readLink("/proc/\(pid)/root") == root && FS.readLink("/proc/\(pid)/exe") != nil })
        let inspector = try ProcessInspector(pid: pid)
        #expect(!inspector.rootIsBusyboxImage, "followed /etc -> \(hostDir) from the host's root")
        #expect(FS.read("/etc/clab-image", inRoot: inspector.root) == nil)
        #expect(FS.read("/busybox", inRoot: inspector.root)?.isEmpty == false)
    }

    /// A layer's `x -> <host dir>`, replaced in the container by a directory (opaque in the upper):
    /// `clab diff` listed the host directory's files as deleted. And `/etc` replaced by a
    /// symlink is listed as itself.
    @Test func diffListsSymlinksNotWhatTheyPointAt() throws {
        try TestEnv.ensureImage()
        let hostDir = TestEnv.root + "/diff-host-\(unique)"
        let context = TestEnv.root + "/ctx-diff-\(unique)"
        let image = "symlinked-\(unique)"
        let name = "diff-\(unique)"
        defer {
            _ = try? clab("rm", name)
            _ = try? clab("image", "rm", image)
            try? FS.removeTree(hostDir)
            try? FS.removeTree(context)
        }
        try FileManager.default.createDirectory(atPath: hostDir + "/inner", withIntermediateDirectories: true)
        try "secret\n".write(toFile: hostDir + "/host-secret", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: context, withIntermediateDirectories: true)
        try "FROM busybox\nRUN ln -s \(hostDir) /x\n".write(
            toFile: context + "/Clabfile", atomically: false, encoding: .utf8)
        let build = try clab("image", "build", "-t", image, context)
        #expect(build.status == 0, "\(build.stderr)")
        let run = try clab(
            "step", "9", "--quiet", "--image", image, "--name", name, "--keep", "--", "sh", "-c",
            "rm /x && mkdir /x && echo mine > /x/mine && rm -rf /etc && ln -s /root /etc")
        #expect(run.status == 0, "\(run.stderr)")
        let diff = try clab("diff", name)
        #expect(diff.status == 0, "\(diff.stderr)")
        #expect(!diff.stdout.contains("host-secret") && !diff.stdout.contains("inner"), "\(diff.stdout)")
        #expect(diff.stdout == "C /etc\nC /x\nA /x/mine\n", "\(diff.stdout)")
        #expect(FileManager.default.fileExists(atPath: hostDir + "/host-secret"))
    }

    /// rm -rf of a tree a container wrote: symlinks are removed, never followed.
    @Test func removeTreeRemovesSymlinksNotTheirTargets() throws {
        let tree = TestEnv.root + "/rmtree-\(unique)"
        let hostDir = TestEnv.root + "/rmtree-host-\(unique)"
        defer { try? FileManager.default.removeItem(atPath: hostDir) }
        try FileManager.default.createDirectory(atPath: tree + "/a/b", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: hostDir + "/keep", withIntermediateDirectories: true)
        try "x".write(toFile: hostDir + "/keep/file", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: tree + "/link", withDestinationPath: hostDir)
        try FileManager.default.createSymbolicLink(atPath: tree + "/a/b/link", withDestinationPath: hostDir + "/keep")
        try FileManager.default.createSymbolicLink(atPath: tree + "/toplink", withDestinationPath: hostDir)
        try FS.removeTree(tree + "/toplink")
        try FS.removeTree(tree)
        #expect(!FS.exists(tree))
        #expect(FileManager.default.fileExists(atPath: hostDir + "/keep/file"))
        #expect(FS.walk(hostDir).count == 2)
    }

    /// A container can nest directories deeper than the fd limit (here 25,000 levels, past
    /// this machine's 20,000 open files): removing its layer must still succeed, not stop at
    /// EMFILE (or a stack overflow) and leave the tree behind. Files at the bottom and half way.
    @Test func removeTreeRemovesATreeDeeperThanTheFDLimit() throws {
        let tree = TestEnv.root + "/rmtree-deep-\(unique)"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        var fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        for level in 0..<25_000 {
            #expect(mkdirat(fd, "d", 0o755) == 0)
            if level % 12_500 == 0 { close(openat(fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)) }
            let next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            close(fd)
            fd = next
            try #require(fd >= 0)
        }
        close(openat(fd, "bottom", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644))
        close(fd)
        try FS.removeTree(tree)
        #expect(!FS.exists(tree))
    }
}

/// The medium items of issue 8 on the host side: gc, a full disk, a closed --root, cgroup namespaces.
@Suite("host side: state, gc and cgroup namespaces", needsRoot)
struct HostStateTests {
    let unique = UUID().uuidString.prefix(8).lowercased()

    @Test func gcSaysWhatItSkippedAsTooRecent() throws {
        let root = TestEnv.root + "/gc-recent-\(unique)"
        let layout = StateLayout.resolve(rootOption: root)
        try layout.prepare()
        let dir = layout.containerDir("0123456789ab")
        try FS.makeDirectories(dir)
        let first = try clab("gc", "--root", root)
        #expect(first.stdout.contains("skipped 1 container directory younger than 10 s"), "\(first.stdout)")
        #expect(first.stdout.contains("0123456789ab"))
        #expect(FS.exists(dir))
        // Older: a start that died before writing its state.
        var times = [timeval(tv_sec: time(nil) - 60, tv_usec: 0), timeval(tv_sec: time(nil) - 60, tv_usec: 0)]
        #expect(utimes(dir, &times) == 0)
        let second = try clab("gc", "--root", root)
        #expect(second.stdout == "removed container 0123456789ab\n", "\(second.stdout)")
        #expect(!FS.exists(dir))
    }

    /// A state file that cannot be written (a full disk) leaves no container directory behind.
    @Test func fullDiskLeavesNoContainerDirectory() throws {
        let root = TestEnv.root + "/enospc-\(unique)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        #expect(mount("clab-test-enospc", root, "tmpfs", 0, "size=32m,mode=755") == 0)
        defer {
            umount2(root, Int32(MNT_DETACH))
            rmdir(root)
        }
        try TestEnv.ensureImage(root: root)
        // Fill what is left: directories still fit on tmpfs, file contents do not.
        let fill = open(root + "/fill", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        #expect(fill >= 0)
        let block = [UInt8](repeating: 0, count: 1 << 20)
        while block.withUnsafeBytes({ write(fill, $0.baseAddress, $0.count) }) > 0 {}
        close(fill)
        for stage in ["7", "8"] {
            let out = try clab("step", stage, "--root", root, "--quiet", "--", "true")
            #expect(out.status != 0)
            #expect(out.stderr.contains("No space left on device"), "\(out.stderr)")
            let left = (try? FileManager.default.contentsOfDirectory(atPath: root + "/run/containers")) ?? []
            #expect(left.isEmpty, "stage \(stage) left \(left)")
        }
        #expect(Mounts.mounts(under: root + "/run").isEmpty)
    }

    /// Container root must be able to walk to its files; a --root below a 0700 directory is
    /// refused before the base image is built (and leaves nothing).
    @Test func closedRootIsRefusedBeforeBuilding() throws {
        let parent = TestEnv.root + "/closed-\(unique)"
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        chmod(parent, 0o700)
        defer { try? FS.removeTree(parent) }
        let out = try clab("step", "7", "--root", parent + "/state", "--quiet", "--", "true")
        #expect(out.status == 1)
        #expect(out.stderr.contains("cannot enter \(parent) (mode 700): run `chmod o+x \(parent)`"), "\(out.stderr)")
        #expect(!FS.exists(parent + "/state/images/busybox"), "the base image was built first")
        #expect(!FS.exists(parent + "/state"))
    }

    /// Inside `unshare --cgroup`, /proc/self/cgroup says "/" and the hierarchy is mounted from
    /// "/../..": clab finds its real cgroup by the pid in cgroup.procs.
    @Test func cgroupNamespaceOnAFakeTree() throws {
        let tree = "/tmp/clab-fakecgns-\(unique)"
        defer { try? FileManager.default.removeItem(atPath: tree) }
        for dir in ["/memory/process_api/me", "/memory/process_api/other", "/memory/elsewhere/x", "/cpu", "/pids"] {
            try FileManager.default.createDirectory(atPath: tree + dir, withIntermediateDirectories: true)
        }
        try "1\n2\n".write(toFile: tree + "/memory/process_api/other/cgroup.procs", atomically: false, encoding: .utf8)
        try "3\n4242\n".write(toFile: tree + "/memory/process_api/me/cgroup.procs", atomically: false, encoding: .utf8)
        let mountinfo = """
            32 31 0:29 / \(tree)/cpu rw - cgroup cgroup rw,cpu
            35 31 0:32 /../.. \(tree)/memory rw - cgroup cgroup rw,memory
            39 31 0:36 / \(tree)/pids rw - cgroup cgroup rw,pids
            """
        let selfCgroup = "8:pids:/\n4:memory:/\n1:cpu:/\n0::/\n"
        let driver = try CgroupDriver.detect(mountinfo: mountinfo, selfCgroup: selfCgroup, pid: 4242)
        let placement = try driver.place(id: "c1", parent: nil)
        #expect(placement.dirs["memory"] == tree + "/memory/process_api/me/clab/c1")
        #expect(placement.dirs["pids"] == tree + "/pids/clab/c1")
        // Nowhere to be found (another pid): a clear refusal, not a guess.
        let error = #expect(throws: ClabError.self) {
            try CgroupDriver.detect(mountinfo: mountinfo, selfCgroup: selfCgroup, pid: 999_999)
        }
        #expect(
            error?.message.contains("cannot find its own cgroup in \(tree)/memory") == true, "\(error?.message ?? "")")
        // A subtree mount (a container's /sys/fs/cgroup without a cgroup namespace).
        let sub = try CgroupDriver.detect(
            mountinfo: "35 31 0:32 /docker/a \(tree)/memory rw - cgroup cgroup rw,memory\n"
                + "32 31 0:29 / \(tree)/cpu rw - cgroup cgroup rw,cpu\n"
                + "39 31 0:36 / \(tree)/pids rw - cgroup cgroup rw,pids\n",
            selfCgroup: "4:memory:/docker/a/b\n8:pids:/\n1:cpu:/\n", pid: 1)
        #expect(try sub.place(id: "c", parent: nil).dirs["memory"] == tree + "/memory/b/clab/c")
    }

    /// The real thing: clab inside `unshare --cgroup` runs a stage-8 container beneath its own
    /// cgroup.
    @Test func clabRunsInsideACgroupNamespace() throws {
        try TestEnv.ensureImage()
        let out = try runProcess([
            "/usr/bin/unshare", "--cgroup", TestEnv.clab, "step", "8", "--quiet", "--pids", "16", "--", "sh", "-c",
            "cat /proc/self/cgroup; for f in /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max; do [ -f $f ] && cat $f; done; true",
        ])
        #expect(out.status == 0, "\(out.stderr)")
        // Relative to the namespace's root, which is the test's own cgroup: clab/<id> beneath it.
        let memory = out.stdout.split(separator: "\n").first { $0.contains(":memory:") || $0.hasPrefix("0::") }
        #expect(memory?.contains(":/clab/") == true, "\(out.stdout)")
        #expect(out.stdout.hasSuffix("16\n"), "\(out.stdout)")
    }
}
