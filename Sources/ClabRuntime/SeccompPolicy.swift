import ClabImages
import ClabSeccomp
import ClabSpec
import Glibc

/// Stage 12's seccomp filter for a container: the profile `--security-opt` chose, compiled with
/// libseccomp for the capabilities the container keeps (Docker's profile allows some calls only
/// with a capability, e.g. mount with CAP_SYS_ADMIN). Compiled on the host, so clab-init, static
/// and without libseccomp, only installs bytes.
///
/// Compiling Docker's profile for three architectures takes libseccomp about 12 ms, most of
/// stage 12's start cost; like crun, clab keeps compiled filters (`<root>/seccomp`, root's alone),
/// named by the digest of all that decides them: the profile as Docker JSON, the capabilities,
/// the kernel (minKernel rules), and this clab binary (its compiler and libseccomp).
enum SeccompPolicy {
    static func compile(_ choice: SeccompChoice, capabilities: Set<Capability>, cacheDir: String? = nil) throws
        -> (String, [UInt8])
    {
        let profile: SeccompProfile
        let name: String
        switch choice {
        case .unconfined:
            return ("unconfined", [])
        case .dockerDefault:
            (profile, name) = (SeccompProfile.dockerDefault, "Docker's default profile")
        case .file(let path):
            (profile, name) = (try SeccompProfile.load(path: path), path)
        }
        guard let cacheDir, let key = cacheKey(profile, capabilities) else {
            return (name, try profile.compile(capabilities: capabilities))
        }
        let path = cacheDir + "/" + key + ".bpf"
        if let bytes = read(path), !bytes.isEmpty, bytes.count % 8 == 0, bytes.count / 8 <= Hardening.maxFilterLength {
            return (name, bytes)
        }
        let bytes = try profile.compile(capabilities: capabilities)
        store(bytes, at: path, in: cacheDir)
        return (name, bytes)
    }

    static func cacheKey(_ profile: SeccompProfile, _ capabilities: Set<Capability>) -> String? {
        var exe = stat()
        guard stat("/proc/self/exe", &exe) == 0 else { return nil }
        var hash = SHA256()
        hash.update(profile.dockerJSON().utf8)
        hash.update(
            "\ncaps \(Capability.mask(capabilities)) kernel \(SeccompProfile.hostKernel?.description ?? "?") "
                .utf8)
        hash.update(
            "clab \(exe.st_dev):\(exe.st_ino):\(exe.st_size):\(exe.st_mtim.tv_sec).\(exe.st_mtim.tv_nsec)".utf8)
        return hash.finalize()
    }

    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == 0, st.st_size <= 4096 * 8 else {
            return nil
        }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n == bytes.count ? bytes : nil
    }

    /// Best effort: written aside and renamed, so a reader sees a whole filter or none.
    static func store(_ bytes: [UInt8], at path: String, in dir: String) {
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { return }
        let tmp = dir + "/.tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if written != bytes.count || rename(tmp, path) != 0 { unlink(tmp) }
    }
}
