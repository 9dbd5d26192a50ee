import ArgumentParser
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

struct VolumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume", abstract: "Manage volumes: data that outlives containers.",
        subcommands: [VolumeCreate.self, VolumeList.self, VolumeInspect.self, VolumeRemove.self])
}

struct VolumeCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a volume.")
    @Argument var name: String
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        try global.layout.prepare()
        let store = VolumeStore(layout: global.layout)
        print(try store.create(name) ? name : "\(name) (exists)")
    }
}

struct VolumeList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List volumes.")
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try global.layout.requireReadable()
        let store = VolumeStore(layout: global.layout)
        print(pad("NAME", 20) + "DATA")
        for name in store.list() { print(pad(name, 20) + store.dataPath(name)) }
    }
}

struct VolumeInspect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show a volume.")
    @Argument var name: String
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try global.layout.requireReadable()
        let store = VolumeStore(layout: global.layout)
        try VolumeStore.validateName(name)
        guard store.exists(name) else { throw ClabError("no volume '\(name)': `clab volume ls` lists them") }
        let users = store.users(name)
        print("name:    \(name)")
        print("data:    \(store.dataPath(name))")
        print("in use:  \(users.isEmpty ? "no" : users.joined(separator: ", "))")
    }
}

struct VolumeRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove volumes and their data.")
    @Argument var names: [String]
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try Runtime.requireRoot()
        for name in names {
            try VolumeStore(layout: global.layout).remove(name)
            print("removed \(name)")
        }
    }
}
