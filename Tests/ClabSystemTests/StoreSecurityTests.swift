import ClabOCI
import Foundation
import Glibc
import Testing

@testable import ClabHost
@testable import ClabImages
@testable import ClabRuntime
@testable import ClabSpec
@testable import ClabSys

/// What images and containers leave in clab's state directory must stay out of other host
/// users' reach (setuid programs, device nodes), and `image import` must survive hostile layers:
/// device nodes, a `./` entry that would chmod the layer's directory, gzip bombs, and tar's
/// real reasons for refusing a member (issue 8, item 5 and the gzip-bomb item).
@Suite("the state directory is closed to other users; hostile layers are refused", needsRoot)
struct StoreSecurityTests {
    /// A state directory of its own, in a searchable /tmp directory like the suite's.
    func stateRoot(_ what: String) throws -> String {
        let dir = TestEnv.root + "/store-\(what)-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
        return dir
    }

    func remove(_ dir: String) {
        _ = Mounts.unmountAll(under: dir)
        try? FileManager.default.removeItem(atPath: dir)
    }

    func sh(_ script: String) throws -> Output {
        let out = try runProcess(["/bin/sh", "-c", script])
        #expect(out.status == 0, "\(script): \(out.stderr)")
        return out
    }

    /// Runs a shell script as host user nobody, without any capability (setpriv keeps its own
    /// capabilities until it executes the program, so the script is what must do the probing).
    func asNobody(_ script: String, _ args: [String]) throws -> Output {
        try runProcess(
            ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", script, "sh"]
                + args)
    }

    // MARK: - setuid files and devices in the store

    @Test func setuidFilesAnywhereInTheStoreAreOutOfOtherUsersReach() throws {
        let root = try stateRoot("suid")
        defer { remove(root) }
        let layout = StateLayout.resolve(rootOption: root)
        // As an older clab left them: world-searchable. prepare() must close them.
        for dir in ["images", "layers/sha256", "kept", "volumes", "run/containers"] {
            try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
            chmod(root + "/" + dir, 0o755)
        }
        try TestEnv.ensureImage(root: root)
        let env = ["CLAB_ROOT": root]
        func run(_ args: String...) throws {
            let out = try runProcess([TestEnv.clab] + args, env: env)
            #expect(out.status == 0, "clab \(args.joined(separator: " ")): \(out.stderr)")
        }
        // A layer from `RUN chmod 4755`, its shifted copy, a kept upper and its commit, a
        // volume, the stage-7 copy of the image.
        let context = root + "/context"
        try FileManager.default.createDirectory(atPath: context, withIntermediateDirectories: true)
        try "FROM busybox\nRUN cp /bin/busybox /bin/suid && chmod 4755 /bin/suid\n".write(
            toFile: context + "/Clabfile", atomically: false, encoding: .utf8)
        try run("image", "build", "-t", "suid:1", context)
        try run("step", "9", "--quiet", "--image", "suid:1", "--", "true")
        try run("step", "9", "--quiet", "--name", "kept-suid", "--keep", "--", "chmod", "4755", "/bin/busybox")
        try run("commit", "kept-suid", "suid:2")
        try run(
            "step", "10", "--quiet", "-v", "suid-vol:/v", "--", "sh", "-c", "cp /bin/busybox /v/bb; chmod 4755 /v/bb")
        try run("step", "7", "--quiet", "--", "sh", "-c", "cp /bin/busybox /bin/s7; chmod 4755 /bin/s7")

        // And a running container's upper directory, checked while it runs.
        let runtime = Runtime(layout: layout, initPath: TestEnv.runtime.initPath)
        let request = RunRequest(
            stage: try Stage.numbered(9),
            command: ["/bin/sh", "-c", "cp /bin/busybox /bin/live && chmod 4755 /bin/live && exec sleep 60"])
        let prepared = try runtime.prepare(request, log: { _ in })
        let container = try runtime.makeContainer(prepared)
        defer {
            if container.pid > 0 {
                kill(container.pid, SIGKILL)
                _ = container.wait()
            }
            Runtime.remove(container, prepared)
        }
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        try container.start(stdio: (devNull, devNull, devNull))
        let upper = try #require(prepared.spec.overlay?.upper)
        #expect(
            eventually(20) {
                var st = stat()
                return lstat(upper + "/bin/live", &st) == 0 && st.st_mode & S_ISUID != 0
            }, "the running container made no setuid file in \(upper)")

        // Every setuid/setgid file below the state root, found as root.
        let setuid = FS.walk(root).filter { path in
            var st = stat()
            return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && st.st_mode & (S_ISUID | S_ISGID) != 0
        }
        let rel = setuid.map { String($0.dropFirst(root.count + 1)) }
        for place in [
            "layers/sha256/", "layers/shifted-100000/", "kept/kept-suid/upper/", "volumes/suid-vol/_data/",
            "images/busybox/shifted-100000/rootfs/", "run/containers/\(prepared.spec.id)/upper/",
        ] {
            #expect(rel.contains { $0.hasPrefix(place) }, "no setuid file under \(place): \(rel)")
        }
        // As nobody: none can be looked at or executed, and no state directory entered.
        let probe = """
            for p in "$@"; do
              if [ -d "$p" ]; then (cd "$p" 2>/dev/null) && echo "entered $p"; continue; fi
              stat "$p" >/dev/null 2>&1 && echo "stat $p"
              out=$("$p" true 2>&1)
              case "$out" in *"Permission denied"*) ;; *) echo "executed $p: $out" ;; esac
            done
            true
            """
        let dirs = layout.closedDirectories.map(\.path)
        let out = try asNobody(probe, dirs + setuid)
        #expect(out.status == 0 && out.stdout.isEmpty, "reachable by nobody:\n\(out.stdout)\(out.stderr)")

        // The modes themselves: root's, and the mapped root's group where init passes.
        for (dir, group) in layout.closedDirectories + [
            (root + "/layers/shifted-100000", StateLayout.mappedRootGroup),
            (root + "/images/busybox/shifted-100000", StateLayout.mappedRootGroup),
        ] {
            var st = stat()
            #expect(lstat(dir, &st) == 0)
            #expect(st.st_uid == 0 && st.st_gid == (group ?? 0), "\(dir): \(st.st_uid):\(st.st_gid)")
            #expect(st.st_mode & 0o7777 == (group == nil ? 0o700 : 0o710), "\(dir): \(String(st.st_mode, radix: 8))")
        }

        // A device node in a kept container's upper directory is refused by commit (a container
        // cannot make one, root on the host can): no layer, no scratch directory.
        let keptUpper = root + "/kept/kept-suid/upper"
        try FileManager.default.createDirectory(atPath: keptUpper + "/dev", withIntermediateDirectories: true)
        #expect(mknod(keptUpper + "/dev/sda", S_IFBLK | 0o666, dev_t((8 << 8) | 0)) == 0)
        let layersBefore = try FileManager.default.contentsOfDirectory(atPath: root + "/layers/sha256")
        let commit = try runProcess([TestEnv.clab, "commit", "kept-suid", "dev:1"], env: env)
        #expect(commit.status == 2, "\(commit.stderr)")
        #expect(commit.stderr.contains("/dev/sda, a block device 8:0"), "\(commit.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/layers/sha256") == layersBefore)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: root + "/layers").filter { $0.hasPrefix(".tmp") } == [])
    }

    // MARK: - uid 100000 is not only container root

    // `useradd` hands out subordinate ids from 100000 (SUB_UID_MIN), so on many machines a user
    // can map uid 100000 with newuidmap and act as container root on the host. What clab does as
    // root to trees that uid owns must not hand it root's power.

    /// That user hard-linked a setuid program of its own into a RUN step's upper directory while
    /// the step ran: clab's in-place chown to root, then chmod to restore the setuid bit, made it
    /// setuid root (a root shell for the user). The layer is now made from a copy.
    @Test func aHardLinkIntoARunStepDoesNotBecomeSetuidRoot() throws {
        let root = try stateRoot("runlink")
        defer { remove(root) }
        try TestEnv.ensureImage(root: root)
        let context = root + "/context"
        try FileManager.default.createDirectory(atPath: context, withIntermediateDirectories: true)
        try "FROM busybox\nRUN sleep 3\n".write(toFile: context + "/Clabfile", atomically: false, encoding: .utf8)
        // The user's own setuid program, on the state's filesystem (a hard link cannot leave it).
        let program = root + "/users-program"
        try "#!/bin/sh\nid\n".write(toFile: program, atomically: false, encoding: .utf8)
        #expect(chown(program, 100_000, 100_000) == 0 && chmod(program, 0o4755) == 0)
        let build = Process()
        build.executableURL = URL(fileURLWithPath: TestEnv.clab)
        build.arguments = ["image", "build", "-t", "runlink:1", context]
        var environment = ProcessInfo.processInfo.environment
        environment["CLAB_ROOT"] = root
        build.environment = environment
        build.standardInput = FileHandle.nullDevice
        build.standardOutput = FileHandle.nullDevice
        build.standardError = FileHandle.nullDevice
        try build.run()
        let upper = root + "/layers/.tmp-run-\(build.processIdentifier)/upper"
        let linked = eventually(30) { link(program, upper + "/linked") == 0 }
        build.waitUntilExit()
        #expect(linked, "the RUN step's upper directory never appeared")
        #expect(build.terminationStatus == 0)
        var st = stat()
        #expect(lstat(program, &st) == 0)
        #expect(st.st_uid == 100_000 && st.st_gid == 100_000, "the user's program is now \(st.st_uid):\(st.st_gid)")
        #expect(st.st_mode & 0o7777 == 0o4755)
    }

    /// The staging directory of volumes was uid 100000's: it could swap a staging point for a
    /// symlink between clab's mkdir and mount, and clab (in the host's namespace) would have
    /// mounted the volume over the symlink's target, a host directory.
    @Test func volumeStagingIsRootsAlone() throws {
        let bundle = try stateRoot("staging")
        defer { remove(bundle) }
        let source = bundle + "/source"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        let staged = try VolumeStaging.stage(
            [VolumeSpec(source: source, target: "/v", readOnly: true)], bundleDir: bundle, owner: 100_000)
        defer { VolumeStaging.release(bundleDir: bundle) }
        var st = stat()
        #expect(lstat(bundle + "/volumes", &st) == 0)
        #expect(st.st_uid == 0 && st.st_gid == 100_000 && st.st_mode & 0o7777 == 0o710)
        // Init (uid and gid 100000 on the host) passes through; nothing as that uid adds a name.
        let out = try runProcess([
            "/usr/bin/setpriv", "--reuid=100000", "--regid=100000", "--clear-groups", "/bin/sh", "-c",
            "ls -d '\(staged[0].source)/.' && ln -s / '\(bundle)/volumes/1'",
        ])
        #expect(out.status != 0 && out.stdout.contains(staged[0].source), "\(out.stdout) \(out.stderr)")
        #expect(!FS.exists(bundle + "/volumes/1"))
    }

    /// An imported tar's `./` entry gives the tree being extracted its owner and mode; with
    /// uid 100000 and 0777, that uid could reach into it while tar (root) extracted, since
    /// layers/ lets it pass, and swap a directory for a symlink that tar then followed.
    @Test func aLayerBeingImportedIsOutOfUid100000sReach() throws {
        let work = try stateRoot("importreach")
        defer { remove(work) }
        _ = try sh(
            "mkdir '\(work)/t' && cd '\(work)/t' && for i in $(seq 3000); do echo $i > f$i; done"
                + " && chown 100000:100000 . && chmod 777 . && tar --numeric-owner -cf ../layer.tar .")
        try layout(at: work + "/oci", blob: work + "/layer.tar", gzip: false)
        let root = work + "/state"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chmod(root, 0o755)
        let importer = Process()
        importer.executableURL = URL(fileURLWithPath: TestEnv.clab)
        importer.arguments = ["image", "import", work + "/oci", "--tag", "reach:1"]
        var environment = ProcessInfo.processInfo.environment
        environment["CLAB_ROOT"] = root
        importer.environment = environment
        importer.standardOutput = FileHandle.nullDevice
        importer.standardError = FileHandle.nullDevice
        try importer.run()
        // As uid 100000, for as long as the import runs: add a file to the tree being extracted.
        let pid = importer.processIdentifier
        let probe = try runProcess([
            "/usr/bin/setpriv", "--reuid=100000", "--regid=100000", "--clear-groups", "/bin/sh", "-c",
            "while [ -d /proc/\(pid) ]; do for t in '\(root)/layers/.tmp-import-\(pid)' '\(root)/layers/.tmp-import-\(pid)/tree';"
                + " do touch \"$t/injected\" 2>/dev/null && echo reached $t; done; done; true",
        ])
        importer.waitUntilExit()
        #expect(importer.terminationStatus == 0)
        #expect(!probe.stdout.contains("reached"), "\(probe.stdout)")
    }

    // MARK: - hostile OCI layers

    /// An OCI layout with one layer, the blob at `blobPath`; the diff_id is the uncompressed
    /// stream's sha256 unless given (a refused layer never gets that far).
    func layout(
        at dir: String, blob blobPath: String, gzip: Bool, diffID: String? = nil
    ) throws {
        let blobs = dir + "/blobs/sha256"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        func sha256(_ path: String) throws -> String {
            let out = try runProcess(["/usr/bin/sha256sum", path])
            return "sha256:" + (out.stdout.split(separator: " ").first.map(String.init) ?? "")
        }
        func store(_ object: Any) throws -> [String: Any] {
            let bytes = try JSONSerialization.data(withJSONObject: object)
            let digest = "sha256:" + SHA256.hex(Array(bytes))
            try bytes.write(to: URL(fileURLWithPath: blobs + "/" + digest.dropFirst(7)))
            return ["digest": digest, "size": bytes.count]
        }
        let blobDigest = try sha256(blobPath)
        let size = try FileManager.default.attributesOfItem(atPath: blobPath)[.size] as? Int ?? 0
        _ = try sh("cp '\(blobPath)' '\(blobs)/\(blobDigest.dropFirst(7))'")
        let uncompressed: String
        if let diffID {
            uncompressed = diffID
        } else if gzip {
            _ = try sh("gzip -dc '\(blobPath)' > '\(blobPath).tar'")
            uncompressed = try sha256(blobPath + ".tar")
        } else {
            uncompressed = blobDigest
        }
        var config = try store([
            "architecture": OCI.hostArchitecture, "os": "linux", "config": ["Cmd": ["/bin/sh"]],
            "rootfs": ["type": "layers", "diff_ids": [uncompressed]],
        ])
        config["mediaType"] = OCI.configType
        let manifest = try store([
            "schemaVersion": 2, "mediaType": OCI.manifestType, "config": config,
            "layers": [
                [
                    "mediaType": gzip ? OCI.layerGzipType : OCI.layerTarType, "digest": blobDigest, "size": size,
                ] as [String: Any]
            ],
        ])
        var entry = manifest
        entry["mediaType"] = OCI.manifestType
        try JSONSerialization.data(withJSONObject: ["schemaVersion": 2, "manifests": [entry]]).write(
            to: URL(fileURLWithPath: dir + "/index.json"))
        try #"{"imageLayoutVersion":"1.0.0"}"#.write(toFile: dir + "/oci-layout", atomically: false, encoding: .utf8)
    }

    /// `clab image import DIR --tag hostile:1` into `root`.
    func importing(_ dir: String, root: String, _ extra: String...) throws -> (Output, Double) {
        let started = Date()
        let out = try runProcess(
            [TestEnv.clab, "image", "import", dir, "--tag", "hostile:1"] + extra, env: ["CLAB_ROOT": root])
        return (out, Date().timeIntervalSince(started))
    }

    /// A refused import: exit 2, one error line with `message`, and nothing in the store.
    func expectRefused(
        _ out: Output, _ message: String, root: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(out.status == 2, "\(out.stderr)", sourceLocation: sourceLocation)
        let errors = out.stderr.split(separator: "\n").filter { $0.hasPrefix("clab: ") }
        #expect(errors.count == 1 && errors[0].contains(message), "\(out.stderr)", sourceLocation: sourceLocation)
        let layers = (try? FileManager.default.contentsOfDirectory(atPath: root + "/layers/sha256")) ?? []
        #expect(layers.isEmpty, "layers left: \(layers)", sourceLocation: sourceLocation)
        let scratch = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/layers")) ?? [])
            .filter { $0.hasPrefix(".tmp") }
        #expect(scratch.isEmpty, "scratch left: \(scratch)", sourceLocation: sourceLocation)
        #expect(
            ImageStore(layout: StateLayout.resolve(rootOption: root)).refs().isEmpty, sourceLocation: sourceLocation)
    }

    @Test func importRefusesDeviceNodesBeforeTheyExist() throws {
        let work = try stateRoot("dev")
        defer { remove(work) }
        // A loop device (a host disk for whoever opens it) and /dev/mem.
        for (name, type, major, minor, message) in [
            ("loop0", S_IFBLK, 7, 0, "./dev/loop0, a block device 7:0"),
            ("mem", S_IFCHR, 1, 1, "./dev/mem, a character device 1:1"),
        ] {
            let tree = work + "/tree-\(name)"
            try FileManager.default.createDirectory(atPath: tree + "/dev", withIntermediateDirectories: true)
            try "hi\n".write(toFile: tree + "/hello", atomically: false, encoding: .utf8)
            #expect(mknod(tree + "/dev/" + name, type | 0o666, dev_t((major << 8) | minor)) == 0)
            _ = try sh("tar -C '\(tree)' --numeric-owner -cf - . | gzip -n > '\(work)/\(name).tar.gz'")
            try layout(at: work + "/oci-\(name)", blob: work + "/\(name).tar.gz", gzip: true)
            let root = work + "/state-\(name)"
            let (out, _) = try importing(work + "/oci-\(name)", root: root)
            expectRefused(out, "holds a device node, \(message)", root: root)
        }
    }

    @Test func aDotEntryDoesNotChangeTheLayerDirectory() throws {
        let work = try stateRoot("dot")
        defer { remove(work) }
        let tree = work + "/tree"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        try "hi\n".write(toFile: tree + "/hello", atomically: false, encoding: .utf8)
        chown(tree, 1234, 1234)
        chmod(tree, 0o7777)
        _ = try sh("tar -C '\(tree)' --numeric-owner -cf '\(work)/layer.tar' .")
        #expect(try sh("tar -tvf '\(work)/layer.tar'").stdout.contains("drwsrwsrwt 1234/1234"))
        try layout(at: work + "/oci", blob: work + "/layer.tar", gzip: false)
        let root = work + "/state"
        let (out, _) = try importing(work + "/oci", root: root)
        #expect(out.status == 0, "\(out.stderr)")
        let store = ImageStore(layout: StateLayout.resolve(rootOption: root))
        let layer = try #require(try store.layers("hostile:1").first)
        for dir in [store.layerStore.path(layer), try store.layerStore.shifted(layer, base: 100_000)] {
            var st = stat()
            #expect(lstat(dir, &st) == 0)
            let owner: uid_t = dir.contains("shifted-") ? 100_000 : 0
            #expect(st.st_uid == owner && st.st_gid == owner, "\(dir): \(st.st_uid):\(st.st_gid)")
            #expect(st.st_mode & 0o7777 == 0o755, "\(dir): \(String(st.st_mode & 0o7777, radix: 8))")
        }
    }

    @Test func gzipBombsStopAtTheLimitOrWhenTarStops() throws {
        let work = try stateRoot("bomb")
        defer { remove(work) }
        // 64 MiB of zeros in one member: ~64 KiB gzip'd.
        _ = try sh(
            "mkdir '\(work)/t' && truncate -s 64M '\(work)/t/zeros' && tar -C '\(work)/t' -cf - zeros | gzip -1 -n > '\(work)/bomb.gz'"
        )
        let fake = "sha256:" + String(repeating: "0", count: 64)
        try layout(at: work + "/oci-bomb", blob: work + "/bomb.gz", gzip: true, diffID: fake)
        let (bomb, bombTime) = try importing(work + "/oci-bomb", root: work + "/state-bomb", "--max-size", "8M")
        expectRefused(
            bomb, "layer 1: the image unpacks to more than 8.0 MiB (the --max-size limit)", root: work + "/state-bomb")
        #expect(bombTime < 20, "took \(bombTime) s")
        let badSize = try runProcess(
            [TestEnv.clab, "image", "import", work + "/oci-bomb", "--max-size", "lots"],
            env: ["CLAB_ROOT": work + "/state-bomb"])
        #expect(badSize.status == 2 && badSize.stderr.contains("--max-size lots is not a size"), "\(badSize.stderr)")

        // Not a tar, then 128 MiB of zeros: tar gives up at once, and so does clab, with tar's reason.
        _ = try sh("(head -c 4096 /dev/urandom; head -c 128M /dev/zero) | gzip -1 -n > '\(work)/junk.gz'")
        try layout(at: work + "/oci-junk", blob: work + "/junk.gz", gzip: true, diffID: fake)
        let (junk, junkTime) = try importing(work + "/oci-junk", root: work + "/state-junk")
        expectRefused(junk, "This does not look like a tar archive", root: work + "/state-junk")
        #expect(junkTime < 20, "took \(junkTime) s")

        // An empty archive followed by 128 MiB of zeros: tar is done, the zeros are not a layer.
        _ = try sh("head -c 128M /dev/zero | gzip -1 -n > '\(work)/tail.gz'")
        try layout(at: work + "/oci-tail", blob: work + "/tail.gz", gzip: true, diffID: fake)
        let (tail, _) = try importing(work + "/oci-tail", root: work + "/state-tail")
        expectRefused(tail, "follows the tar's end-of-archive blocks", root: work + "/state-tail")
    }

    /// The limit counted the stream only: a sparse member (10 KiB of tar for 256 MiB of file)
    /// or one file under many hard links went through, and the layer's digest then read every
    /// byte of every path (a 20 GiB sparse file kept clab hashing for minutes).
    @Test(arguments: ["sparse", "hardlinks"])
    func theLimitCountsWhatTheLayerUnpacksTo(kind: String) throws {
        let work = try stateRoot(kind)
        defer { remove(work) }
        let make =
            kind == "sparse"
            ? "truncate -s 256M big && tar --sparse --format=pax -cf ../layer.tar big"
            : "head -c 1M /dev/zero > big && for i in $(seq 16); do ln big link$i; done && tar -cf ../layer.tar ."
        _ = try sh("mkdir '\(work)/t' && cd '\(work)/t' && \(make)")
        #expect(try FileManager.default.attributesOfItem(atPath: work + "/layer.tar")[.size] as? Int ?? 0 < 2 << 20)
        try layout(at: work + "/oci", blob: work + "/layer.tar", gzip: false)
        let root = work + "/state"
        let (out, _) = try importing(work + "/oci", root: root, "--max-size", "8M")
        expectRefused(out, "layer 1: the image unpacks to more than 8.0 MiB (the --max-size limit)", root: root)
    }

    /// A layer file owned by uid 4294967294 (a tar may say so): its copy for uid 100000+ was
    /// computed as 4294967294 + 100000 in 32 bits, and clab crashed at the image's first run.
    @Test func aHugeOwnerInALayerDoesNotCrashItsShiftedCopy() throws {
        let work = try stateRoot("bigid")
        defer { remove(work) }
        let tree = work + "/tree"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        try "hi\n".write(toFile: tree + "/far", atomically: false, encoding: .utf8)
        #expect(chown(tree + "/far", 4_294_967_294, 4_294_967_294) == 0)
        _ = try sh("tar -C '\(tree)' --numeric-owner -cf '\(work)/layer.tar' far")
        try layout(at: work + "/oci", blob: work + "/layer.tar", gzip: false)
        let root = work + "/state"
        let (imported, _) = try importing(work + "/oci", root: root)
        #expect(imported.status == 0, "\(imported.stderr)")
        let run = try runProcess(
            [TestEnv.clab, "step", "9", "--quiet", "--image", "hostile:1", "--", "/far"], env: ["CLAB_ROOT": root])
        #expect(run.status == 126, "\(run.stderr)")  // not executable, once the copy exists
        let store = ImageStore(layout: StateLayout.resolve(rootOption: root))
        let layer = try #require(try store.layers("hostile:1").first)
        var st = stat()
        #expect(lstat(store.layerStore.shiftedPath(layer, base: 100_000) + "/far", &st) == 0)
        #expect(st.st_uid == 100_000 + 65534, "\(st.st_uid)")
    }

    @Test func tarsOwnReasonIsReported() throws {
        let work = try stateRoot("dotdot")
        defer { remove(work) }
        _ = try sh(
            "mkdir '\(work)/t' && echo x > '\(work)/t/evil' && tar -C '\(work)/t' -P --transform 's,^evil,../evil,' -cf - evil | gzip -n > '\(work)/layer.gz'"
        )
        try layout(at: work + "/oci", blob: work + "/layer.gz", gzip: true)
        let (out, _) = try importing(work + "/oci", root: work + "/state")
        expectRefused(out, "tar could not unpack layer blob", root: work + "/state")
        #expect(out.stderr.contains("../evil: Member name contains '..'"), "\(out.stderr)")
        #expect(!FS.exists(work + "/evil") && !FS.exists(work + "/state/layers/evil"))
    }
}
