import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// A real registry for a test: Debian's docker-registry (CNCF Distribution 2.8) on
/// 127.0.0.1:<free port>, its config and storage in a temp dir, optionally with htpasswd
/// (bcrypt) auth. `stop()` kills it by pid and removes the dir.
final class LocalRegistry {
    let dir: String
    let port: Int
    let pid: pid_t
    var address: String { "127.0.0.1:\(port)" }
    var storage: String { dir + "/data" }

    static var available: Bool { Host.which("docker-registry") != nil }

    init(user: String? = nil, password: String? = nil) throws {
        dir = "/tmp/clab-registry-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        do {
            port = try Self.freePort()
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
        var auth = ""
        if let user, let password {
            let out = try? runProcess(["/usr/bin/htpasswd", "-Bbn", user, password])
            guard let out, out.status == 0 else {
                try? FileManager.default.removeItem(atPath: dir)
                throw ClabError("htpasswd (apache2-utils) failed: \(out?.stderr ?? "not installed")")
            }
            try out.stdout.write(toFile: dir + "/htpasswd", atomically: true, encoding: .utf8)
            auth = "auth:\n  htpasswd:\n    realm: clab-test\n    path: \(dir)/htpasswd\n"
        }
        let config = """
            version: 0.1
            log:
              level: warn
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: \(dir)/data
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
            \(auth)
            """
        try config.write(toFile: dir + "/config.yml", atomically: true, encoding: .utf8)
        let log = open(dir + "/registry.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let null = open("/dev/zero", O_RDONLY | O_CLOEXEC)
        defer {
            close(log)
            close(null)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, null, 0)
        posix_spawn_file_actions_adddup2(&actions, log, 1)
        posix_spawn_file_actions_adddup2(&actions, log, 2)
        var child: pid_t = 0
        let rc = spawnWithDefaultSignals(
            &child, ["/usr/bin/docker-registry", "serve", dir + "/config.yml"], environment: [:], actions: &actions)
        guard rc == 0 else { throw ClabError("cannot start docker-registry: \(errnoDescription(rc))") }
        pid = child
        let url = "http://\(address)/v2/"
        // Generous: a Go binary's first start on a loaded two-core machine can take seconds. A
        // registry that exited (a port taken after all) ends the wait at once.
        var exited = false
        let up = eventually(30) {
            var status: Int32 = 0
            if waitpid(child, &status, WNOHANG) == child {
                exited = true
                return true
            }
            let out = try? runProcess(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url])
            return out.map { ["200", "401"].contains($0.stdout) } ?? false
        }
        guard up, !exited else {
            let log = FS.read(dir + "/registry.log") ?? ""
            if exited { try? FileManager.default.removeItem(atPath: dir) } else { stop() }
            throw ClabError("docker-registry \(exited ? "exited" : "did not answer") on \(address): \(log)")
        }
    }

    /// A port the kernel just gave a socket bound to 127.0.0.1:0 (closed again: a small race).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(fd, p, len) == 0 && getsockname(fd, p, &len) == 0
            }
        }
        guard bound else { throw ClabError("cannot find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// The file the registry keeps a blob's bytes in.
    func blobFile(_ digest: String) -> String {
        let hex = String(digest.dropFirst(7))
        return storage + "/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        if !eventually(5, { waitpid(pid, &status, WNOHANG) == pid }) {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}
