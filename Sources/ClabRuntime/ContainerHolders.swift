import ClabHost
import ClabImages

/// The image store's view of containers (ClabImages' `ImageHolders`): the kept containers' meta
/// files and the running containers' state files, read when the store asks.
public struct ContainerHolders: ImageHolders {
    public let layout: StateLayout

    public init(layout: StateLayout) { self.layout = layout }

    public func kept() -> [(name: String, image: String, layers: [String])] {
        KeptContainers(layout: layout).list().map { ($0.name, $0.image, $0.layers) }
    }

    public func runningLayers() -> Set<String> {
        Set(ContainerState.running(in: layout).flatMap { $0.layers ?? [] })
    }

    public func anyRunning() -> Bool { !ContainerState.running(in: layout).isEmpty }
}

extension ImageStore {
    /// The store as the runtime and its commands use it: asking this clab's containers.
    public init(layout: StateLayout) { self.init(layout: layout, holders: ContainerHolders(layout: layout)) }
}
