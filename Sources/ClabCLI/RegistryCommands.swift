import ArgumentParser
import ClabRuntime

/// `clab push|pull|login|logout` are clabd's (the registry client links SwiftNIO, which clab
/// does not): each hands its arguments, --help included, to clabd by execve.
protocol ClabdPassthrough: ParsableCommand {
    var arguments: [String] { get }
}

extension ClabdPassthrough {
    func run() throws {
        try Clabd.exec([Self.configuration.commandName ?? ""] + arguments)
    }
}

struct PushCommand: ClabdPassthrough {
    static let configuration = CommandConfiguration(
        commandName: "push", abstract: "Push an image to a registry (REGISTRY/NAME:TAG; `clab push --help`).")

    @Argument(parsing: .captureForPassthrough, help: "REGISTRY/NAME[:TAG] [--chunk-size SIZE] [-q] [--root DIR]")
    var arguments: [String] = []
}

struct PullCommand: ClabdPassthrough {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull an image from a registry (REGISTRY/NAME[:TAG|@sha256:DIGEST]; `clab pull --help`).")

    @Argument(parsing: .captureForPassthrough, help: "REGISTRY/NAME[:TAG|@DIGEST] [--max-size SIZE] [-q] [--root DIR]")
    var arguments: [String] = []
}

struct LoginCommand: ClabdPassthrough {
    static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Log in to a registry; credentials stored 0600 (`clab login --help`).")

    @Argument(parsing: .captureForPassthrough, help: "HOST[:PORT] [-u USER] [--password-stdin] [--root DIR]")
    var arguments: [String] = []
}

struct LogoutCommand: ClabdPassthrough {
    static let configuration = CommandConfiguration(
        commandName: "logout", abstract: "Forget a registry's stored credentials.")

    @Argument(parsing: .captureForPassthrough, help: "HOST[:PORT] [--root DIR]")
    var arguments: [String] = []
}
