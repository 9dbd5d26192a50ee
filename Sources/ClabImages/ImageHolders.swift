/// What containers hold of the image store. The store cannot see containers (this module does
/// not import the runtime, which imports it), so it asks this before it deletes anything a
/// container may use: a layer on `clab rmi` and after a failed import, the old base image's tree
/// when it is rebuilt. The runtime's `ContainerHolders` reads kept containers and state files.
public protocol ImageHolders: Sendable {
    /// Kept containers (`--keep`): each one's name, image reference and layers.
    func kept() -> [(name: String, image: String, layers: [String])]
    /// The layers (hex digests) that running containers have mounted.
    func runningLayers() -> Set<String>
    /// Whether any container runs: one below stage 9 may have its root in an image's tree.
    func anyRunning() -> Bool
}
