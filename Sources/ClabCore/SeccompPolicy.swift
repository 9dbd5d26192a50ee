import ClabKernel
import ClabSeccomp

/// Stage 12's seccomp filter for a container: the profile `--security-opt` chose, compiled with
/// libseccomp for the capabilities the container keeps (Docker's profile allows some calls only
/// with a capability, e.g. mount with CAP_SYS_ADMIN). Compiled on the host, so clab-init, static
/// and without libseccomp, only installs bytes.
enum SeccompPolicy {
    static func compile(_ choice: SeccompChoice, capabilities: Set<Capability>) throws -> (String, [UInt8]) {
        switch choice {
        case .unconfined:
            return ("unconfined", [])
        case .dockerDefault:
            return ("Docker's default profile", try SeccompProfile.dockerDefault.compile(capabilities: capabilities))
        case .file(let path):
            return (path, try SeccompProfile.load(path: path).compile(capabilities: capabilities))
        }
    }
}
