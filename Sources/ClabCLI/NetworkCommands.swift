import ArgumentParser
import ClabNetlink
import ClabNetwork
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

struct NetworkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network",
        abstract: "User-defined bridge networks (stage 11): containers on one find each other by name.",
        subcommands: [NetworkList.self, NetworkCreate.self, NetworkInspect.self, NetworkRemove.self])
}

struct NetworkList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let store = Runtime(layout: global.layout).networks
        print(pad("NAME", 16) + pad("BRIDGE", 17) + pad("SUBNET", 18) + "CONTAINERS")
        for config in store.list() {
            print(
                pad(config.name, 16) + pad(config.bridge, 17) + pad(config.subnet, 18)
                    + "\(store.leases(config.name).count)")
        }
    }
}

struct NetworkCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a bridge network (its bridge stays until `clab network rm`).")

    @Argument(help: "The network's name.")
    var name: String

    @Option(help: "Its subnet, e.g. 172.30.0.0/16 (default: a free one; never one the host routes).")
    var subnet: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        try NetworkStore.validateName(name)
        let layout = global.layout
        try layout.prepare()
        let config = try Runtime(layout: layout).networks.create(name, subnet: subnet)
        print(
            "\(config.name): bridge \(config.bridge), subnet \(config.subnet), gateway \(config.gateway.map { "\($0)" } ?? "?")"
        )
    }
}

struct NetworkInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "A network and its containers, as JSON.")

    @Argument(help: "The network's name (`clab` is the default bridge).")
    var name: String

    @OptionGroup var global: GlobalOptions

    struct Shown: Encodable {
        var name: String
        var bridge: String
        var subnet: String
        var gateway: String
        var containers: [Member]
        struct Member: Encodable {
            var id: String
            var name: String?
            var address: String
        }
    }

    func run() throws {
        let store = Runtime(layout: global.layout).networks
        guard let config = store.list().first(where: { $0.name == name }) else {
            throw ClabError("no network '\(name)': see `clab network ls`")
        }
        let shown = Shown(
            name: config.name, bridge: config.bridge, subnet: config.subnet,
            gateway: config.gateway.map { "\($0)" } ?? "?",
            containers: store.leases(name).map { .init(id: $0.container, name: $0.name, address: "\($0.address)") })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(shown), as: UTF8.self))
    }
}

struct NetworkRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a network and its bridge (none of its containers may be running).")

    @Argument(help: "The network's name.")
    var name: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        try Runtime(layout: global.layout).networks.remove(name)
        print("removed network \(name)")
    }
}
