import ArgumentParser
import ClabImages
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Manage images.",
        subcommands: [
            ImageList.self, ImagePath.self, ImageInspect.self, ImageBuildCommand.self, ImageHistoryCommand.self,
            ImageTagCommand.self, ImageRemoveCommand.self, ImageExportCommand.self, ImageImportCommand.self,
        ])
}

struct ImageList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List images (building the base image on first use).")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let store = try global.imageStore()
        _ = try store.resolve(ImageStore.baseName)  // registers busybox:latest on first use
        print(pad("NAME:TAG", 24) + pad("IMAGE ID", 14) + pad("LAYERS", 8) + "SIZE")
        for (ref, id) in store.refs() where ref.name != "clab-build-tmp" {
            let config = try? store.config(id: id)
            let size = (config?.layers ?? []).reduce(0) { $0 + store.layerStore.size($1) }
            print(
                pad(ref.description, 24) + pad(String(LayerStore.hex(id).prefix(12)), 14)
                    + pad("\(config?.layers.count ?? 0)", 8) + humanBytes(Int64(size)))
        }
        for image in store.list() {
            print("\nstages 1-8 run on \(image.name)'s writable root filesystem: \(image.rootfs)")
            for base in image.shiftedCopies {
                print("  and its copy owned by uid \(base)+ (stage 7): \(store.shiftedRootfs(image.name, base: base))")
            }
        }
    }
}

struct ImagePath: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "path", abstract: "Print the root filesystem directory of an image (for doing it by hand).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The image (only 'busybox' so far).")
    var name: String = ImageStore.baseName

    func run() throws {
        let store = try global.imageStore()
        guard store.list().contains(where: { $0.name == name }) else {
            throw ClabError("no image '\(name)': run `clab image ls` to see the images")
        }
        print(store.rootfs(name))
    }
}

struct ImageInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "An image's layers (digest, size) and where they are stored.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "NAME[:TAG] (default busybox).")
    var name: String = ImageStore.baseName

    func run() throws {
        let store = try global.imageStore()
        let (id, config) = try store.resolve(name)
        let layers = config.layers
        print("image:   \(try ImageRef.parse(name))  \(id)")
        if FS.isDirectory(store.rootfs(name)) {
            print("rootfs:  \(store.rootfs(name))   (stages 1-8 run here, writable)")
        }
        print("env:     \(config.env.joined(separator: " "))")
        print("cmd:     \(config.cmd?.joined(separator: " ") ?? "-")")
        print("workdir: \(config.workdir ?? "/")")
        print("layers:  \(layers.count), bottom first (stage 9 stacks them read-only)")
        for digest in layers {
            let size = humanBytes(Int64(store.layerStore.size(digest)))
            print("  \(digest)  \(size)  \(store.layerStore.path(digest))")
        }
    }
}

extension GlobalOptions {
    /// As root, the state directory ready and the base image built (on first use): what every
    /// `clab image` command starts from.
    func imageStore() throws -> ImageStore {
        try Runtime.requireRoot()
        try layout.prepare()
        let store = ImageStore(layout: layout)
        try store.ensureBase(log: { stderrLine("clab: \($0)") })
        return store
    }
}

struct ImageBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build", abstract: "Build an image from a build file (FROM, COPY, RUN, ENV, WORKDIR, CMD).")

    @Option(name: .short, help: "NAME[:TAG] for the result.")
    var tag: String

    @Option(name: .short, help: "The build file (default DIR/Clabfile).")
    var file: String?

    @Argument(help: "The build directory: COPY sources are taken from here.")
    var directory: String

    @OptionGroup var cgroups: CgroupParentOption
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let ref = try ImageRef.parse(tag)
        try Runtime.requireRoot()
        var runtime = Runtime(layout: global.layout)
        runtime.cgroupParent = try cgroups.resolved()
        let builder = ImageBuilder(runtime: runtime)
        _ = try builder.build(
            file: file ?? directory + "/Clabfile", context: directory, tag: ref, log: { stderrLine($0) })
    }
}

struct ImageHistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "How an image was made, newest step first, with each layer.")

    @Argument(help: "NAME[:TAG]")
    var image: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try global.layout.requireReadable()
        let store = ImageStore(layout: global.layout)
        let (id, config) = try store.resolve(image)
        print("image \(id)")
        var layers = config.layers
        var rows: [String] = []
        for entry in config.history {
            var layer = "-"
            if !entry.emptyLayer, !layers.isEmpty {
                let digest = layers.removeFirst()
                layer = String(digest.prefix(19)) + "  " + humanBytes(Int64(store.layerStore.size(digest)))
            }
            rows.append(pad(layer, 34) + entry.createdBy)
        }
        print(pad("LAYER", 34) + "CREATED BY")
        for row in rows.reversed() { print(row) }
    }
}

struct ImageTagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tag", abstract: "Give an image another name.")

    @Argument(help: "NAME[:TAG] of an image")
    var source: String

    @Argument(help: "The new NAME[:TAG]")
    var target: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let ref = try ImageRef.parse(target)
        try Runtime.requireRoot()
        // In a fresh state root the base image is built first, as `clab image ls` does
        // (`clab image tag busybox localhost:5000/bb:1` before any other command).
        let store = try global.imageStore()
        try store.tag(try store.resolve(source).id, as: ref)
    }
}

struct ImageRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove image names; layers no image uses any more go too.")

    @Argument(help: "NAME[:TAG]")
    var images: [String]

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        let store = ImageStore(layout: global.layout)
        for image in images {
            try store.remove(image)
            print("removed \(try ImageRef.parse(image))")
        }
    }
}

struct CommitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit", abstract: "Turn a kept container's changes into a new image.")

    @Argument(help: "The kept container (its --name).")
    var container: String

    @Argument(help: "NAME[:TAG] for the new image.")
    var image: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let ref = try ImageRef.parse(image)
        try Runtime.requireRoot()
        let id = try KeptContainers(layout: global.layout).commit(container, as: ref, log: { stderrLine($0) })
        print("\(ref) \(id.prefix(19))")
    }
}
