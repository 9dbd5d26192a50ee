import ClabSpec
import ClabSys

/// The runtime spec's `linux.seccomp`, for OCI bundles (ClabRuntime's OCIBundle.swift): read with
/// the same strict reader as Docker's profiles (the OCI object is a subset of Docker's), and
/// written as OCI JSON with Docker's conditions already decided for one container, as moby
/// does before it hands the config to runc.
extension SeccompProfile {
    /// `linux.seccomp` of a config.json. `flags` are refused: clab's installer passes none.
    public static func parse(oci value: JSON, source: String) throws -> SeccompProfile {
        do throws(ProfileIssue) {
            let profile = try profile(value)
            if let flag = profile.flags.first {
                throw ProfileIssue("flags: \(flag) is not supported (clab installs the filter without flags)")
            }
            try profile.check()
            return profile
        } catch {
            throw ClabError("\(source): \(error.message)", exitCode: 2)
        }
    }

    /// This profile as the runtime spec carries it: the rules that apply to a container keeping
    /// `capabilities` on this machine and kernel, with no conditions or comments, and the
    /// architectures spelled out instead of an `archMap`.
    public func resolvedForOCI(capabilities: Set<Capability>) -> SeccompProfile {
        var rules = rules(for: capabilities)
        for i in rules.indices {
            rules[i].includes = nil
            rules[i].excludes = nil
            rules[i].comment = nil
        }
        return SeccompProfile(
            defaultAction: defaultAction, defaultErrnoRet: defaultErrnoRet, architectures: filterArchitectures,
            syscalls: rules)
    }
}
