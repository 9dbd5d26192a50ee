import ClabSpec

extension Banner {
    /// Stage 7: what `unshare --map-users` needs on the host.
    static func userLines(_ spec: ContainerSpec) -> [String] {
        guard spec.ownsUserNamespace else { return [] }
        return [
            "           (--map-users runs newuidmap, from the uidmap package: it needs root:100000:65536 in /etc/subuid and /etc/subgid)"
        ]
    }
}
