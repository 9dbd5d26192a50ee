import ArgumentParser
import ClabCore
import FoundationEssentials
import Glibc

struct ImageExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an image as an OCI image layout (skopeo, umoci, podman and Docker read it).",
        discussion:
            "DIR must not exist or be empty. Try `skopeo inspect oci:DIR:TAG` or `umoci unpack --image DIR:TAG`.")

    @Argument(help: "NAME[:TAG] of an image")
    var image: String

    @Argument(help: "A new or empty directory for the layout.")
    var directory: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        _ = try ImageRef.parse(image)
        try Runtime.requireRoot()
        let layout = OCILayout(images: ImageStore(layout: global.layout))
        let exported = try layout.export(image, to: directory, log: { stderrLine($0) })
        print("\(exported.ref) \(exported.manifest.digest) \(directory)")
    }
}

struct ImageImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read an image from an OCI image layout (one image; gzip'd or plain tar layers).",
        discussion: "Every blob is checked against its digest; bad input leaves nothing in the store.")

    @Argument(help: "The layout directory (oci-layout, index.json, blobs/).")
    var directory: String

    @Option(name: [.short, .long], help: "NAME[:TAG] for the image (default: the name the layout gives it).")
    var tag: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let ref = try tag.map(ImageRef.parse)
        try Runtime.requireRoot()
        let layout = OCILayout(images: ImageStore(layout: global.layout))
        let imported = try layout.importLayout(from: directory, as: ref, log: { stderrLine($0) })
        print("\(imported.ref) \(imported.id.prefix(19))")
    }
}
