import ClabOCI
import ClabSys
import Foundation
import Glibc
import Testing

@testable import ClabHost
@testable import ClabImages
@testable import ClabRuntime

/// `clab image export` / `clab image import`, checked with Debian's skopeo and umoci on local
/// `oci:` paths (never a registry).
@Suite("OCI image layout: export, import, skopeo and umoci", needsRoot)
struct OCITests {
    func tool(_ name: String) throws -> String {
        try #require(Host.which(name), "\(name) is not installed: `make deps` installs it")
    }

    func scratch(_ what: String) throws -> String {
        let dir = TestEnv.root + "/oci-\(what)-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func unique(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(6).lowercased())" }

    func run(_ argv: String...) throws -> Output { try run(argv: argv) }

    func run(argv: [String]) throws -> Output {
        let out = try runProcess(argv)
        #expect(out.status == 0, "\(argv.joined(separator: " ")): \(out.stderr)")
        return out
    }

    @Test func exportIsReadBySkopeoAndUmociAndRoundTrips() throws {
        try TestEnv.ensureImage()
        _ = try tool("skopeo")  // run through skopeoArgv (nothing left in /var/lib)
        let umoci = try tool("umoci")
        let work = try scratch("export")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try FileManager.default.createDirectory(atPath: work + "/ctx/site", withIntermediateDirectories: true)
        try "<h1>hi</h1>\n".write(toFile: work + "/ctx/site/index.html", atomically: false, encoding: .utf8)
        // /bin/vi (from the base layer) deleted: a whiteout. /opt replaced: an opaque directory.
        try """
        FROM busybox
        ENV GREETING=hello
        COPY site /www/
        COPY site /opt/
        RUN rm /bin/vi && rm -rf /opt && mkdir /opt && echo new > /opt/new.txt
        CMD ["/bin/sh", "-c", "echo $GREETING; ls /www; ls /opt; ls /bin/vi 2>&1 | wc -l"]
        """.write(toFile: work + "/ctx/Clabfile", atomically: false, encoding: .utf8)
        let name = unique("ociweb")
        let copy = unique("ocicopy")
        #expect(try clab("image", "build", "-t", "\(name):1", work + "/ctx").status == 0)
        defer { _ = try? clab("image", "rm", "\(name):1", "\(copy):2") }

        let layout = work + "/layout"
        let export = try clab("image", "export", "\(name):1", layout)
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stderr.contains("layer 4/4"), "\(export.stderr)")
        #expect(export.stderr.contains("(canonical tar | gzip -n) and hashing"), "\(export.stderr)")
        let original = try ImageStore(layout: TestEnv.layout).resolve("\(name):1").config

        // The RUN layer holds OCI whiteouts.
        let manifestDigest = try #require(export.stdout.split(separator: " ").dropFirst().first)
        let manifest = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + manifestDigest.dropFirst(7))))
        let layers = try #require((manifest as? [String: Any])?["layers"] as? [[String: Any]])
        #expect(layers.count == 4)
        #expect(layers.allSatisfy { $0["mediaType"] as? String == OCI.layerGzipType })
        let runBlob = try #require((layers.last?["digest"] as? String)?.dropFirst(7))
        let listing = try run("/bin/tar", "-tzf", layout + "/blobs/sha256/" + runBlob).stdout
        #expect(listing.contains("bin/.wh.vi\n") && listing.contains("opt/.wh..wh..opq\n"), "\(listing)")

        // skopeo reads the layout: the layers, and the config's env.
        let inspect = try run(argv: skopeoArgv("inspect", "oci:\(layout):1"))
        let info = try #require(
            try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
        #expect((info["Layers"] as? [String])?.count == 4)
        #expect((info["Env"] as? [String])?.contains("GREETING=hello") == true, "\(inspect.stdout)")
        let config = try run(argv: skopeoArgv("inspect", "--config", "oci:\(layout):1")).stdout
        #expect(config.contains(original.layers[3]), "\(config)")

        // umoci applies the whiteouts: the COPY'd file is there, the deleted one and the
        // replaced directory's old content are not.
        let bundle = work + "/bundle"
        _ = try run(umoci, "unpack", "--image", "\(layout):1", bundle)
        #expect(FileManager.default.fileExists(atPath: bundle + "/rootfs/www/index.html"))
        #expect(FileManager.default.fileExists(atPath: bundle + "/rootfs/bin/sh"))
        #expect(!FS.exists(bundle + "/rootfs/bin/vi"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: bundle + "/rootfs/opt") == ["new.txt"])

        // Re-import under another name: the same layers, digest for digest, and it runs.
        let imported = try clab("image", "import", layout, "--tag", "\(copy):2")
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stderr.components(separatedBy: "(the diff_id)").count - 1 == 4, "\(imported.stderr)")
        #expect(
            imported.stderr.contains("converted to overlayfs form: 1 whiteout, 1 opaque directory"),
            "\(imported.stderr)")
        let copied = try ImageStore(layout: TestEnv.layout).resolve("\(copy):2")
        #expect(copied.config.layers == original.layers)
        #expect(copied.config == original, "env, cmd, history and created survive the round trip")
        let runOut = try clab("step", "9", "--quiet", "--image", "\(copy):2")
        #expect(runOut.stdout == "hello\nindex.html\nnew.txt\n1\n", "\(runOut.stdout)\(runOut.stderr)")

        // The export is deterministic: the same image gives the same manifest.
        let again = try clab("image", "export", "\(copy):2", work + "/again")
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.split(separator: " ")[1] == export.stdout.split(separator: " ")[1])
    }

    @Test func importsALayoutUmociMade() throws {
        try TestEnv.ensureImage()
        let umoci = try tool("umoci")
        let work = try scratch("umoci")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let base = try ImageStore(layout: TestEnv.layout).resolve("busybox").config.layers[0]
        let layout = work + "/layout"
        let bundle = work + "/bundle"
        let refName = unique("umoci")
        let image = "\(refName):latest"
        // A base layer (umoci insert), a change with a deletion (unpack, edit, repack), config.
        _ = try run(umoci, "init", "--layout", layout)
        _ = try run(umoci, "new", "--image", "\(layout):\(refName)")
        _ = try run(
            umoci, "insert", "--image", "\(layout):\(refName)", LayerStore(layout: TestEnv.layout).path(base), "/")
        _ = try run(umoci, "unpack", "--image", "\(layout):\(refName)", bundle)
        #expect(unlink(bundle + "/rootfs/bin/vi") == 0)
        try "from umoci\n".write(toFile: bundle + "/rootfs/etc/umoci.txt", atomically: false, encoding: .utf8)
        _ = try run(umoci, "repack", "--image", "\(layout):\(refName)", bundle)
        _ = try run(
            umoci, "config", "--image", "\(layout):\(refName)", "--config.env", "GREETING=umoci",
            "--config.cmd", "sh", "--config.cmd", "-c",
            "--config.cmd", "echo $GREETING; cat /etc/umoci.txt; ls /bin/vi 2>&1 | wc -l")

        // No --tag: the name comes from the layout's ref.name.
        let imported = try clab("image", "import", layout)
        #expect(imported.status == 0, "\(imported.stderr)")
        defer { _ = try? clab("image", "rm", image) }
        #expect(imported.stdout.hasPrefix(image + " "), "\(imported.stdout)")
        // umoci's tars carry real mtimes: stored under clab's canonical digest, said once a layer.
        #expect(imported.stderr.contains("stored under clab's canonical digest"), "\(imported.stderr)")
        #expect(
            imported.stderr.contains("converted to overlayfs form: 1 whiteout, 0 opaque directories"),
            "\(imported.stderr)")
        let config = try ImageStore(layout: TestEnv.layout).resolve(image).config
        #expect(config.layers.count == 2)
        #expect(config.env == ["GREETING=umoci"])
        for digest in config.layers { #expect(try LayerStore(layout: TestEnv.layout).verify(digest)) }
        let runOut = try clab("step", "9", "--quiet", "--image", image)
        #expect(runOut.stdout == "umoci\nfrom umoci\n1\n", "\(runOut.stdout)\(runOut.stderr)")
    }

    @Test func badInputIsRefusedAndLeavesNothing() throws {
        try TestEnv.ensureImage()
        let work = try scratch("bad")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let good = work + "/good"
        #expect(try clab("image", "export", "busybox", good).status == 0)
        // Imports go to an empty state directory of their own: afterwards it must hold no
        // image, no layer and no temporary directory.
        let root = work + "/state"
        func importing(_ dir: String, _ extra: String...) throws -> Output {
            try runProcess([TestEnv.clab, "image", "import", dir] + extra, env: ["CLAB_ROOT": root])
        }
        func variant(_ name: String, _ change: (String) throws -> Void) throws -> String {
            let dir = work + "/" + name
            _ = try run("/bin/cp", "-a", good, dir)
            try change(dir)
            return dir
        }
        func json(_ path: String) throws -> [String: Any] {
            try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }
        func writeJSON(_ object: Any, _ path: String) throws {
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        }
        func blob(_ dir: String, _ digest: String) -> String { dir + "/blobs/sha256/" + digest.dropFirst(7) }
        func manifestDigest(_ dir: String) throws -> String {
            let index = try json(dir + "/index.json")
            return try #require((index["manifests"] as? [[String: Any]])?.first?["digest"] as? String)
        }

        /// Rewrites the manifest and config, and the digests that name them.
        func rewrite(
            _ dir: String, manifest change: (inout [String: Any]) throws -> Void,
            config changeConfig: (inout [String: Any]) throws -> Void = { _ in }
        ) throws {
            func store(_ object: Any) throws -> (String, Int) {
                let bytes = try JSONSerialization.data(withJSONObject: object)
                let digest = "sha256:" + SHA256.hex(Array(bytes))
                try bytes.write(to: URL(fileURLWithPath: blob(dir, digest)))
                return (digest, bytes.count)
            }
            var manifest = try json(blob(dir, try manifestDigest(dir)))
            var configDescriptor = try #require(manifest["config"] as? [String: Any])
            var config = try json(blob(dir, try #require(configDescriptor["digest"] as? String)))
            try changeConfig(&config)
            (configDescriptor["digest"], configDescriptor["size"]) = try store(config)
            manifest["config"] = configDescriptor
            try change(&manifest)
            var index = try json(dir + "/index.json")
            var manifests = try #require(index["manifests"] as? [[String: Any]])
            (manifests[0]["digest"], manifests[0]["size"]) = try store(manifest)
            index["manifests"] = manifests
            try writeJSON(index, dir + "/index.json")
        }

        let noIndex = try variant("no-index") { unlink($0 + "/index.json") }
        // Two layers, the second a blob whose bytes are not its digest: the first layer, already
        // stored by then, must go again.
        let corrupt = try variant("corrupt") { dir in
            try rewrite(
                dir,
                manifest: { manifest in
                    var layers = try #require(manifest["layers"] as? [[String: Any]])
                    var second = layers[0]
                    let original = try Data(
                        contentsOf: URL(fileURLWithPath: blob(dir, layers[0]["digest"] as? String ?? "")))
                    var damaged = original
                    damaged[100] ^= 0xff
                    let digest = "sha256:" + SHA256.hex(Array("not this content".utf8))
                    try damaged.write(to: URL(fileURLWithPath: blob(dir, digest)))
                    second["digest"] = digest
                    layers.append(second)
                    manifest["layers"] = layers
                },
                config: { config in
                    var rootfs = try #require(config["rootfs"] as? [String: Any])
                    let diffIDs = try #require(rootfs["diff_ids"] as? [String])
                    rootfs["diff_ids"] = diffIDs + diffIDs
                    config["rootfs"] = rootfs
                })
        }
        // A zstd layer, in a manifest whose digest is right: the media type is what is refused.
        let zstd = try variant("zstd") { dir in
            try rewrite(
                dir,
                manifest: { manifest in
                    var layers = try #require(manifest["layers"] as? [[String: Any]])
                    layers[0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd"
                    manifest["layers"] = layers
                })
        }
        let cases: [(String, String)] = [
            (noIndex, "is not an OCI image layout: it has no index.json"),
            (corrupt, "blob sha256:b93aeaa02122 does not match its digest"),
            (zstd, "layer 1: unsupported media type application/vnd.oci.image.layer.v1.tar+zstd"),
            (work + "/missing", "is not a directory"),
        ]
        for (dir, message) in cases {
            let out = try importing(dir, "--tag", "bad:1")
            #expect(out.status == 2, "\(dir): \(out.stderr)")
            let errors = out.stderr.split(separator: "\n").filter { $0.hasPrefix("clab: ") }
            #expect(errors.count == 1 && errors[0].contains(message), "\(dir): \(out.stderr)")
            if dir == corrupt {
                #expect(out.stderr.contains("(the diff_id)"), "layer 1 was stored first: \(out.stderr)")
            }
        }
        let layers = (try? FileManager.default.contentsOfDirectory(atPath: root + "/layers/sha256")) ?? []
        #expect(layers.isEmpty, "\(layers)")
        let scratchLeft = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/layers")) ?? [])
            .filter { $0.contains(".tmp-") }
        #expect(scratchLeft.isEmpty, "\(scratchLeft)")
        #expect(ImageStore(layout: StateLayout.resolve(rootOption: root)).refs().isEmpty)
        // The untouched layout imports into that same state directory.
        #expect(try importing(good, "--tag", "good:1").status == 0)

        // Export never writes into a directory that has something in it, and makes nothing
        // for an image that does not exist.
        let full = work + "/full"
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        try "mine\n".write(toFile: full + "/notes.txt", atomically: false, encoding: .utf8)
        let refused = try clab("image", "export", "busybox", full)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("is not empty"), "\(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: full) == ["notes.txt"])
        let unknown = try clab("image", "export", "no-such-image", work + "/new")
        #expect(unknown.stderr.contains("no image 'no-such-image:latest'"), "\(unknown.stderr)")
        #expect(!FS.exists(work + "/new"))
    }
}
