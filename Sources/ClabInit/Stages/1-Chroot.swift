import ClabSys

/// Stage 1: chroot(2). The process's idea of "/" moves to the image. Nothing else changes:
/// same hostname, same processes, same mounts, same network, same users — and the current
/// directory can still point outside the new root, which is how `breakout` escapes.
enum ChrootStage {
    static func enter(_ root: String, calls: some StageCalls = KernelCalls()) throws {
        try step(1) {
            try check(calls.chdir(root), "chdir \(root)")
            try check(calls.chroot("."), "chroot \(root)")
            try check(calls.chdir("/"), "chdir /")
        }
    }
}
