// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "clab",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "clab", targets: ["clab"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // The only C: clone3 + the raw syscalls a forked child may make, and variadic calls.
        .target(name: "CShims"),
        // The runtime: specs, stages, spawning, init, images, state, gc.
        .target(name: "ClabCore", dependencies: ["CShims"]),
        // Isolation probes, shared by `clab check` and the test suites.
        .target(name: "ClabChecks", dependencies: ["ClabCore"]),
        // Command-line parsing and output; a library so tests can parse real argv.
        .target(
            name: "ClabCLI",
            dependencies: [
                "ClabCore", "ClabChecks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "clab", dependencies: ["ClabCLI"]),
        .testTarget(
            name: "ClabTests",
            dependencies: ["ClabCore", "ClabChecks", "ClabCLI", "clab"]),
    ],
    swiftLanguageModes: [.v6]
)
