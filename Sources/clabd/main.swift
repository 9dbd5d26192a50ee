// clabd: the part of clab that links SwiftNIO. `clab push|pull|login|logout` execve this
// binary (Sources/ClabCore/Clabd.swift), so the clab command itself stays static and starts in
// a millisecond. One switch on the first argument, one case per front end.
import ClabRegistry
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case let name? where RegistryCommands.names.contains(name):
    exit(await RegistryCommands.main(arguments))
case "lab16-facts":
    exit(await Lab16Facts.main(Array(arguments.dropFirst())))
default:
    let bytes = Array("clabd: run through clab (clab push, pull, login, logout)\n".utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}
