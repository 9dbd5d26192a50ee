import ClabHost
import ClabImages
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

@testable import ClabRegistry

/// Push and pull against a real registry (Debian's docker-registry on 127.0.0.1), read back by
/// skopeo, and the other way round; a tampered blob, and basic auth with `clab login`. Each test
/// starts its own registry and state roots and removes them.
@Suite(
    "registry · push, pull, login against docker-registry", needsRoot, .serialized,
    .enabled(if: LocalRegistry.available, "needs Debian's docker-registry (make test installs it)"))
struct RegistryTests {
    let base = TestEnv.root + "/registry-\(UUID().uuidString.prefix(8))"

    func clab(_ root: String, _ args: String..., stdin: String = "") throws -> Output {
        try runProcess([TestEnv.clab] + args, env: ["CLAB_ROOT": root], stdin: stdin)
    }

    /// A state root with the busybox image in it.
    func seededRoot(_ name: String) throws -> String {
        let root = base + "/" + name
        try TestEnv.ensureImage(root: root)
        return root
    }

    func freshRoot(_ name: String) throws -> String {
        let root = base + "/" + name
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }

    func cleanup() {
        _ = Mounts.unmountAll(under: base)
        try? FileManager.default.removeItem(atPath: base)
    }

    func digest(of output: Output) -> String {
        output.stdout.split(separator: " ").last.map { String($0).trimmed } ?? ""
    }

    @Test func pushTwoTagsPullByTagAndDigestRunAndSkopeoReadsIt() throws {
        let registry = try LocalRegistry()
        defer {
            registry.stop()
            cleanup()
        }
        let a = try seededRoot("a")
        let name = registry.address + "/bb"
        #expect(try clab(a, "image", "tag", "busybox", name + ":1").status == 0)
        #expect(try clab(a, "image", "tag", "busybox", name + ":2").status == 0)
        let first = try clab(a, "push", name + ":1")
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stderr.contains(": Pushed"), "\(first.stderr)")
        let second = try clab(a, "push", name + ":2")
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        // The second tag finds every blob there already and only PUTs the manifest.
        #expect(second.stderr.contains("Layer already exists"), "\(second.stderr)")
        let digest = digest(of: first)
        #expect(digest.hasPrefix("sha256:") && digest.count == 71, "\(first.stdout)")
        #expect(self.digest(of: second) == digest, "two tags of one image are one manifest")

        // skopeo reads what clab pushed, and copies it to an OCI layout.
        let inspect = try runProcess(skopeoArgv("inspect", "--tls-verify=false", "docker://\(name):2"))
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let info = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
        #expect(info?["Digest"] as? String == digest)
        #expect((info?["Layers"] as? [String])?.count == 1)
        let ociDir = base + "/skopeo-oci"
        let copy = try runProcess(
            skopeoArgv("copy", "--src-tls-verify=false", "docker://\(name):1", "oci:\(ociDir):bb"))
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(FS.exists(ociDir + "/index.json"))

        // A fresh root pulls by tag and by digest, and runs both.
        let b = try freshRoot("b")
        let byTag = try clab(b, "pull", name + ":1")
        #expect(byTag.status == 0, "\(byTag.stdout)\(byTag.stderr)")
        #expect(byTag.stdout.contains(digest), "\(byTag.stdout)")
        let byDigest = try clab(b, "pull", "\(name)@\(digest)")
        #expect(byDigest.status == 0, "\(byDigest.stdout)\(byDigest.stderr)")
        for ref in [name + ":1", "\(name)@\(digest)"] {
            let run = try clab(b, "run", ref, "--", "echo", "hi from the registry")
            #expect(run.status == 0, "\(ref): \(run.stdout)\(run.stderr)")
            #expect(run.stdout == "hi from the registry\n", "\(ref): \(run.stdout)\(run.stderr)")
        }
        let list = try clab(b, "image", "ls")
        #expect(list.stdout.contains(name), "\(list.stdout)")
        // Nothing of the pulls' scratch is left.
        let scratch = try FileManager.default.contentsOfDirectory(atPath: b + "/images").filter {
            $0.hasPrefix(".tmp-")
        }
        #expect(scratch.isEmpty, "\(scratch)")
    }

    @Test func chunkedUploadAndCrossRepositoryMount() throws {
        let registry = try LocalRegistry()
        defer {
            registry.stop()
            cleanup()
        }
        let a = try seededRoot("a")
        #expect(try clab(a, "image", "tag", "busybox", registry.address + "/one:1").status == 0)
        let chunked = try clab(a, "push", "--chunk-size", "64K", "--verbose", registry.address + "/one:1")
        #expect(chunked.status == 0, "\(chunked.stdout)\(chunked.stderr)")
        #expect(chunked.stderr.contains("chunked(parts: "), "\(chunked.stderr)")
        // Another repository of the same registry: the layer is mounted from `one`, not sent.
        #expect(try clab(a, "image", "tag", "busybox", registry.address + "/two:1").status == 0)
        let mounted = try clab(a, "push", registry.address + "/two:1")
        #expect(mounted.status == 0, "\(mounted.stdout)\(mounted.stderr)")
        #expect(mounted.stderr.contains("Mounted from one"), "\(mounted.stderr)")
        let b = try freshRoot("b")
        let pulled = try clab(b, "pull", registry.address + "/two:1")
        #expect(pulled.status == 0, "\(pulled.stdout)\(pulled.stderr)")
    }

    @Test func anImageSkopeoPushedRunsAfterPull() throws {
        let registry = try LocalRegistry()
        defer {
            registry.stop()
            cleanup()
        }
        let a = try seededRoot("a")
        let layout = base + "/export"
        let export = try clab(a, "image", "export", "busybox", layout)
        #expect(export.status == 0, "\(export.stderr)")
        // Docker's schema 2 manifest on purpose: clab's own pushes are OCI.
        let push = try runProcess(
            skopeoArgv(
                "copy", "--dest-tls-verify=false", "--format", "v2s2", "oci:\(layout):latest",
                "docker://\(registry.address)/fromskopeo:v1"))
        #expect(push.status == 0, "\(push.stderr)")
        let b = try freshRoot("b")
        let pulled = try clab(b, "pull", registry.address + "/fromskopeo:v1")
        #expect(pulled.status == 0, "\(pulled.stdout)\(pulled.stderr)")
        let run = try clab(b, "run", registry.address + "/fromskopeo:v1", "--", "cat", "/etc/clab-image")
        #expect(run.stdout == "clab busybox image\n", "\(run.stdout)\(run.stderr)")
    }

    @Test func aTamperedBlobIsRefusedAndLeavesNothing() throws {
        let registry = try LocalRegistry()
        defer {
            registry.stop()
            cleanup()
        }
        let a = try seededRoot("a")
        let name = registry.address + "/bad:1"
        #expect(try clab(a, "image", "tag", "busybox", name).status == 0)
        #expect(try clab(a, "push", name).status == 0)
        let skopeo = try runProcess(skopeoArgv("inspect", "--tls-verify=false", "docker://\(name)"))
        let info = try JSONSerialization.jsonObject(with: Data(skopeo.stdout.utf8)) as? [String: Any]
        let layer = try #require((info?["Layers"] as? [String])?.first)
        // One byte flipped in the registry's own file: same size, other sha256.
        let file = registry.blobFile(layer)
        let handle = try #require(FileHandle(forUpdatingAtPath: file))
        handle.seek(toFileOffset: 100)
        let byte = handle.readData(ofLength: 1)
        handle.seek(toFileOffset: 100)
        handle.write(Data([~(byte.first ?? 0)]))
        handle.closeFile()

        let b = try freshRoot("b")
        let pulled = try clab(b, "pull", name)
        #expect(pulled.status != 0)
        #expect(pulled.stderr.contains("digest mismatch: blob \(layer.prefix(19))"), "\(pulled.stderr)")
        #expect(pulled.stderr.split(separator: "\n").last?.hasPrefix("clab: ") == true, "\(pulled.stderr)")
        // Nothing: no name, no config, no layer, no scratch.
        let layout = StateLayout.resolve(rootOption: b)
        #expect(ImageStore(layout: layout).refs().isEmpty)
        let layers = (try? FileManager.default.contentsOfDirectory(atPath: layout.layersDir + "/sha256")) ?? []
        #expect(layers.isEmpty, "\(layers)")
        let images = (try? FileManager.default.contentsOfDirectory(atPath: layout.imagesDir)) ?? []
        #expect(images.filter { $0.hasPrefix(".tmp-") }.isEmpty, "\(images)")
    }

    @Test func basicAuthNeedsLoginAndStoresCredentials0600() throws {
        let registry = try LocalRegistry(user: "student", password: "s3cret pass")
        defer {
            registry.stop()
            cleanup()
        }
        let a = try seededRoot("a")
        let name = registry.address + "/private:1"
        #expect(try clab(a, "image", "tag", "busybox", name).status == 0)
        let refused = try clab(a, "push", name)
        #expect(refused.status != 0)
        #expect(
            refused.stderr.hasSuffix(
                "\nclab: \(registry.address) requires authentication: run `clab login \(registry.address)` first\n"),
            "\(refused.stderr)")
        let wrong = try clab(a, "login", "-u", "student", "--password-stdin", registry.address, stdin: "nope\n")
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("refused the credentials of 'student'"), "\(wrong.stderr)")
        let credentials = a + "/registry/config.json"
        #expect(!FS.exists(credentials), "a failed login stores nothing")
        let login = try clab(
            a, "login", "-u", "student", "--password-stdin", registry.address, stdin: "s3cret pass\n")
        #expect(login.status == 0, "\(login.stdout)\(login.stderr)")
        #expect(login.stdout == "Login Succeeded\n")
        var st = stat()
        #expect(stat(credentials, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(stat(a + "/registry", &st) == 0 && st.st_mode & 0o777 == 0o700)
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: credentials)))
        let auths = (stored as? [String: Any])?["auths"] as? [String: [String: String]]
        #expect(auths?[registry.address]?["auth"] == Data("student:s3cret pass".utf8).base64EncodedString())
        let pushed = try clab(a, "push", name)
        #expect(pushed.status == 0, "\(pushed.stdout)\(pushed.stderr)")
        // skopeo, with the same file as its authfile, reads it too.
        let inspect = try runProcess(
            skopeoArgv("inspect", "--tls-verify=false", "--authfile", credentials, "docker://\(name)"))
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let logout = try clab(a, "logout", registry.address)
        #expect(logout.stdout == "Removing login credentials for \(registry.address)\n")
        let again = try clab(a, "pull", name)
        #expect(again.stderr.contains("requires authentication"), "\(again.stderr)")
    }

    @Test func badReferencesFailInOneLineWithoutNetwork() throws {
        let root = try freshRoot("refs")
        defer { cleanup() }
        let cases: [(String, String)] = [
            ("busybox", "names no registry"),
            ("localhost:5000/BB:1", "invalid image name"),
            ("localhost:5000/bb@sha256:1234", "invalid image name"),
            ("localhost:99999/bb", "invalid image name"),
            ("localhost:5000/bb:-x", "invalid image name"),
        ]
        for (ref, message) in cases {
            let out = try clab(root, "pull", ref)
            #expect(out.status == 2, "\(ref): \(out.stderr)")
            #expect(out.stderr.hasPrefix("clab: ") && out.stderr.contains(message), "\(ref): \(out.stderr)")
            #expect(out.stderr.split(separator: "\n").count == 1, "\(ref): \(out.stderr)")
        }
        let push = try clab(root, "push", "localhost:5000/bb@sha256:" + String(repeating: "a", count: 64))
        #expect(push.stderr.contains("push a tag, not a digest"), "\(push.stderr)")
    }
}

/// The parts that need no registry: references, challenges, media types, Docker's auth header.
@Suite("registry · parsing")
struct RegistryParsingTests {
    @Test func registryReferences() throws {
        let ref = try RegistryReference("localhost:5000/team/bb:1.0")
        #expect(ref.registry == "localhost:5000" && ref.repository == "team/bb" && ref.reference == "1.0")
        #expect(RegistryReference.scheme(for: "127.0.0.1:5000") == "http")
        #expect(RegistryReference.scheme(for: "registry.example:443") == "https")
        // Only 127.0.0.0/8 is the loopback, not a name that starts like it.
        #expect(RegistryReference.scheme(for: "127.9.8.7") == "http")
        #expect(RegistryReference.scheme(for: "127.example.net:5000") == "https")
        #expect(RegistryReference.scheme(for: "127.0.0.1.example.net") == "https")
        let digest = "sha256:" + String(repeating: "b", count: 64)
        let byDigest = try RegistryReference("127.0.0.1:5000/bb@\(digest)")
        #expect(
            byDigest.isDigest && byDigest.reference == digest && byDigest.description == "127.0.0.1:5000/bb@\(digest)")
        // Plain names keep working, and the store files a registry name under one directory.
        #expect(try ImageRef.parse("busybox") == ImageRef(name: "busybox", tag: "latest"))
        #expect(try ImageRef.parse("web:v2").tag == "v2")
        #expect(try ImageRef.parse("localhost:5000/bb").tag == "latest")
        #expect(try ImageRef.parse("localhost:5000/bb").registry == "localhost:5000")
        #expect(try ImageRef.parse("team/bb:1").registry == nil)
        #expect(throws: ClabError.self) { try RegistryReference("bb:1") }
        #expect(try RegistryReference.parseRegistry("http://localhost:5000/") == "localhost:5000")
        #expect(throws: ClabError.self) { try RegistryReference.parseRegistry("local host") }
    }

    @Test func originsAndWhereARegistryMaySendClab() async throws {
        #expect(Origin("http://127.0.0.1:5000/v2/x") == Origin(scheme: "http", host: "127.0.0.1", port: 5000))
        #expect(Origin("https://Reg.Example/v2/") == Origin(scheme: "https", host: "reg.example", port: 443))
        #expect(Origin("http://[::1]:80/x") == Origin(scheme: "http", host: "[::1]", port: 80))
        for bad in ["ftp://x/", "http://", "http://user@evil/x", "http://a:99999/", "http://a:x/", "//evil/x", "/v2/"] {
            #expect(Origin(bad) == nil, "\(bad)")
        }
        let local = RegistryClient(registry: "127.0.0.1:5000", auth: nil)
        #expect(try await local.checked("http://127.0.0.1:5000/v2/uploads/1", what: "x") != "")
        for elsewhere in [
            "http://127.0.0.1:2375/v1.41/containers/x/kill", "http://127.0.0.2:5000/token",
            "https://127.0.0.1:5000/v2/", "https://auth.example/token",
        ] {
            await #expect(throws: ClabError.self, "\(elsewhere)") { try await local.checked(elsewhere, what: "x") }
        }
        let remote = RegistryClient(registry: "registry.example", auth: nil)
        #expect(try await remote.checked("https://blobs.example/x", what: "x") != "")
        await #expect(throws: ClabError.self) { try await remote.checked("http://registry.example/x", what: "x") }
    }

    @Test func challenges() {
        let bearer = Challenge(
            #"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:bb:pull,push""#)
        #expect(bearer.scheme == "bearer")
        #expect(bearer.parameters["realm"] == "https://auth.example/token")
        #expect(bearer.parameters["service"] == "registry.example")
        #expect(bearer.parameters["scope"] == "repository:bb:pull,push")
        let basic = Challenge(#"Basic realm="clab-test""#)
        #expect(basic.scheme == "basic" && basic.parameters["realm"] == "clab-test")
    }

    @Test func manifestMediaTypesAreChecked() throws {
        func decode(_ json: String, _ type: String) throws -> String {
            var mediaType = type
            _ = try RegistryService.decodeManifest(Array(json.utf8), mediaType: &mediaType, what: "x")
            return mediaType
        }
        let oci =
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":1},"layers":[]}"#
        #expect(try decode(oci, "application/vnd.oci.image.manifest.v1+json") == MediaType.ociManifest)
        #expect(try decode(oci, "") == MediaType.ociManifest)
        // The header and the document disagree: refused.
        #expect(throws: ClabError.self) { try decode(oci, MediaType.dockerManifest) }
        let schema1 = #"{"schemaVersion":1,"name":"bb","tag":"1","fsLayers":[]}"#
        #expect(throws: ClabError.self) {
            try decode(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws")
        }
        #expect(throws: ClabError.self) { try decode(#"{"schemaVersion":2}"#, "text/html") }
        let index =
            #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:00","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}"#
        #expect(try decode(index, "application/json") == MediaType.ociIndex)
    }

    @Test func dockerRegistryAuthHeader() throws {
        let json = #"{"username":"student","password":"pw","serveraddress":"localhost:5000"}"#
        let header = Data(json.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        #expect(try RegistryAuth.fromXRegistryAuth(header) == RegistryAuth(username: "student", password: "pw"))
        #expect(try RegistryAuth.fromXRegistryAuth("") == nil)
        #expect(throws: ClabError.self) { try RegistryAuth.fromXRegistryAuth("!!!") }
    }

    @Test func progressMessagesAreDockers() throws {
        let message = ProgressMessage(status: "Downloading", id: "0123456789ab", current: 500, total: 1000)
        let json = String(decoding: try JSONEncoder().encode(message), as: UTF8.self)
        #expect(json.contains(#""current":500"#) && json.contains(#""total":1000"#), "\(json)")
        #expect(
            message.progress == "[" + String(repeating: "=", count: 24) + ">" + String(repeating: " ", count: 25)
                + "] 500B/1.0kB", "\(message.progress ?? "")")
        let error = String(decoding: try JSONEncoder().encode(ProgressMessage(error: "boom")), as: UTF8.self)
        #expect(error.contains(#""errorDetail":{"message":"boom"}"#), "\(error)")
    }
}

/// A registry that tries to send clab elsewhere: a token realm, a redirect and an upload
/// location on another port of the loopback, where a listener of the test's records whatever
/// arrives. Nothing may: not the credentials, not a request. (A fake registry in python3:
/// docker-registry cannot be made to misbehave.)
@Suite("registry · a hostile registry cannot send clab elsewhere", needsRoot, .serialized)
struct HostileRegistryTests {
    static let script = #"""
        import http.server, subprocess, sys, threading, json
        clab, root, mode = sys.argv[1:4]
        hits = []
        class Sink(http.server.BaseHTTPRequestHandler):
            def answer(self):
                hits.append(self.requestline)
                self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = answer
            def log_message(self, *a): pass
        sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
        elsewhere = "http://127.0.0.1:%d" % sink.server_address[1]
        class Registry(http.server.BaseHTTPRequestHandler):
            def reply(self, code, headers={}):
                self.send_response(code)
                for k, v in headers.items(): self.send_header(k, v)
                self.send_header("Content-Length", "0"); self.end_headers()
            def do_GET(self):
                if mode == "realm":
                    self.reply(401, {"WWW-Authenticate": 'Bearer realm="%s/token",service="x"' % elsewhere})
                elif self.path == "/v2/":
                    self.reply(200)
                elif mode == "redirect":
                    self.reply(307, {"Location": elsewhere + "/v2/x/manifests/1"})
                else:
                    self.reply(404)
            do_HEAD = do_GET
            def do_POST(self):
                self.reply(202, {"Location": elsewhere + "/v2/x/blobs/uploads/1"})
            def log_message(self, *a): pass
        registry = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
        for s in (sink, registry): threading.Thread(target=s.serve_forever, daemon=True).start()
        address = "127.0.0.1:%d" % registry.server_address[1]
        env = {"CLAB_ROOT": root, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        if mode == "realm":
            argv, stdin = [clab, "login", "-u", "alice", "--password-stdin", address], b"s3cret\n"
        elif mode == "redirect":
            argv, stdin = [clab, "pull", address + "/x:1"], b""
        else:
            subprocess.run([clab, "image", "tag", "busybox", address + "/x:1"], env=env, check=True)
            argv, stdin = [clab, "push", address + "/x:1"], b""
        out = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=60)
        print(json.dumps({"status": out.returncode, "stderr": out.stderr.decode(errors="replace"), "hits": hits}))
        """#

    func run(_ mode: String) throws -> (status: Int, stderr: String, hits: [String]) {
        let root = TestEnv.root + "/hostile-registry-\(UUID().uuidString.prefix(8))"
        defer {
            _ = Mounts.unmountAll(under: root)
            try? FileManager.default.removeItem(atPath: root)
        }
        if mode == "upload" {
            try TestEnv.ensureImage(root: root)
        } else {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        }
        let out = try runProcess(["/usr/bin/python3", "-c", Self.script, TestEnv.clab, root, mode])
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        return (
            json?["status"] as? Int ?? -1, json?["stderr"] as? String ?? out.stderr, json?["hits"] as? [String] ?? ["?"]
        )
    }

    /// The state root may be a user's (--root): a symlink planted as the credentials file is
    /// not followed, so root neither reads nor rewrites the file it points to.
    @Test func theCredentialsFileIsNotFollowedThroughASymlink() throws {
        let root = TestEnv.root + "/creds-link-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FS.makeDirectories(root + "/registry")
        let victim = root + "/victim.json"
        try #"{"auths": {"127.0.0.1:1": {"auth": "eDp5"}}}"#.write(toFile: victim, atomically: true, encoding: .utf8)
        #expect(symlink(victim, root + "/registry/config.json") == 0)
        let out = try runProcess([TestEnv.clab, "logout", "127.0.0.1:1"], env: ["CLAB_ROOT": root])
        #expect(out.status != 0)
        #expect(out.stderr.contains("config.json") && out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(FS.read(victim)?.contains("eDp5") == true, "the file behind the link was rewritten")
    }

    @Test func aTokenRealmElsewhereGetsNoCredentials() throws {
        let out = try run("realm")
        #expect(out.status != 0)
        #expect(out.stderr.contains("sent a token realm on another address"), "\(out.stderr)")
        #expect(out.hits.isEmpty, "the realm got \(out.hits)")
    }

    @Test func aRedirectElsewhereIsNotFollowed() throws {
        let out = try run("redirect")
        #expect(out.status != 0)
        #expect(out.stderr.contains("sent a redirect on another address"), "\(out.stderr)")
        #expect(out.hits.isEmpty, "the redirect's target got \(out.hits)")
    }

    @Test func anUploadLocationElsewhereGetsNoBytes() throws {
        let out = try run("upload")
        #expect(out.status != 0)
        #expect(out.stderr.contains("sent an upload location on another address"), "\(out.stderr)")
        #expect(out.hits.isEmpty, "the upload location got \(out.hits)")
    }
}
