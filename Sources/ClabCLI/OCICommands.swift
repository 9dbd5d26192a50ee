import ArgumentParser
import ClabImages
import ClabRuntime
import ClabSys
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
        discussion:
            "Every blob is checked against its digest; bad input leaves nothing in the store. Layers may hold no device nodes (but overlay whiteouts and null, zero, full, random, urandom, tty); setuid bits are kept, in a store only root can enter."
    )

    @Argument(help: "The layout directory (oci-layout, index.json, blobs/).")
    var directory: String

    @Option(name: [.short, .long], help: "NAME[:TAG] for the image (default: the name the layout gives it).")
    var tag: String?

    @Option(
        name: .customLong("max-size"), parsing: .unconditional,
        help: "Refuse an image whose layers unpack to more than this, e.g. 20G (default 8G).")
    var maxSize: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let ref = try tag.map(ImageRef.parse)
        let limit = try maxSize.map { Int(try parseByteSize($0, option: "--max-size")) }
        try Runtime.requireRoot()
        let layout = OCILayout(images: ImageStore(layout: global.layout))
        let imported = try layout.importLayout(
            from: directory, as: ref, maxSize: limit ?? OCILayout.defaultMaxSize, log: { stderrLine($0) })
        print("\(imported.ref) \(imported.id.prefix(19))")
    }
}
