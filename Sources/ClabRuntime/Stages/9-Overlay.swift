import ClabImages
import ClabSpec
import ClabSys
import Glibc

/// Stage 9's host half: the root becomes an overlay of the image's layers (read-only lowers)
/// and a writable layer of the container's own, and the image's config (hostile: it may have
/// been imported) gives the environment, the default command and the working directory.
/// clab-init mounts the overlay (ClabInit's `Stages/9-Overlay.swift`).
extension Runtime {
    /// The image's config, checked before a volume or layer is made; nil below stage 9.
    func imageConfig(_ request: RunRequest) throws -> ImageConfig? {
        guard request.stage.layersImage else { return nil }
        // `--userns host`: the built-in image itself, whatever busybox:latest names now.
        let config =
            request.security.hostUserNamespace
            ? try images.builtInConfig() : try images.resolve(request.image).config
        try config.validate("image \((try? ImageRef.parse(request.image))?.description ?? request.image)")
        return config
    }

    /// The overlay's layers (the mapped copies in a user namespace, the stored ones under
    /// `--userns host`) and the writable layer's directory. Returns the layers, by digest.
    func overlay(
        _ image: ImageConfig, _ request: RunRequest, mapping: IDMapping?, spec: inout ContainerSpec,
        log: (String) -> Void
    ) throws -> [String] {
        let layers = request.layersOverride ?? image.layers
        spec.workdir = image.workdir
        let lowers = try layers.reversed().map { digest in
            try mapping.map { try images.layerStore.shifted(digest, base: $0.host, log: log) }
                ?? images.layerStore.path(digest)
        }
        // A kept container's writable layer lives under kept/<name>, claimed last (in
        // `prepare`), once nothing else can fail.
        let rw =
            request.rwDir ?? request.keepName.map { KeptContainers(layout: layout).path($0) }
            ?? layout.containerDir(spec.id)
        spec.overlay = OverlaySpec(lowers: lowers, upper: rw + "/upper", work: rw + "/work")
        return layers
    }
}

extension ImageConfig {
    /// The image's environment over the stage's, and its command when the user gave none.
    func apply(to env: inout [String], command: inout [String], given: [String]?) {
        env = Env.setting(self.env, in: env)
        if given?.isEmpty ?? true, let cmd, !cmd.isEmpty { command = cmd }
    }
}

extension Container {
    /// The writable layer belongs to container root (the mapped uid on the host).
    func makeWritableLayer() throws {
        guard let overlay = spec.overlay else { return }
        let owner = spec.idMapping?.host ?? 0
        for dir in [overlay.upper, overlay.work] {
            try FS.makeDirectories(dir)
            guard chown(dir, owner, owner) == 0 else { throw SyscallError("chown \(dir)") }
        }
    }
}
