import ArgumentParser
import ClabCore
import FoundationEssentials
import Glibc

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
