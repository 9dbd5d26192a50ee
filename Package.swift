// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "clab",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "clab", targets: ["clab"]),
        .executable(name: "clab-init", targets: ["clab-init"]),
        .executable(name: "clab-runtime", targets: ["clab-runtime"]),
        .executable(name: "clabd", targets: ["clabd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The registry client's HTTP (on SwiftNIO). Linked into clabd only: clab stays static and fast to start.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // The daemon's HTTP server (clabd only: the static clab binary stays free of NIO).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
    ],
    targets: [
        // The only C: clone3 + the raw syscalls a forked child may make, and variadic calls.
        .target(name: "CShims"),
        // The OS utilities every module uses: fds, paths, errors, text, JSON. No Foundation.
        .target(name: "ClabSys", dependencies: ["CShims"]),
        // What the host and the container's init agree on, and the only place they meet: the
        // stage catalogue, the container spec and its wire format, the sync protocol, the
        // lifecycle, the OCI setup and hooks, the supervisor's files. No Foundation.
        .target(name: "ClabSpec", dependencies: ["ClabSys", "CShims"]),
        // The init halves, run inside the container's namespaces: each stage's in-namespace
        // setup, `clab exec`'s joining process, the detached container's supervisor, the lab
        // probes. No Foundation, so the container's init starts fast; no host module imports it.
        .target(name: "ClabInit", dependencies: ["ClabSpec", "ClabSys", "CShims"]),
        // The container's init, executed inside the new namespaces.
        // Release builds link it fully static: no dynamic loader, ~1 ms off every container start.
        .executableTarget(
            name: "clab-init", dependencies: ["ClabInit"],
            linkerSettings: [.unsafeFlags(["-static-executable"], .when(configuration: .release))]),
        // rtnetlink messages from Swift (links, addresses, routes), no Foundation.
        .target(name: "ClabNetlink", dependencies: ["CShims"]),
        // Stage 11's host side: IPAM, networks, NAT and published ports.
        .target(name: "ClabNetwork", dependencies: ["ClabNetlink", "ClabSpec", "ClabSys", "CShims"]),
        // The device allow-list's cgroup v2 half: a BPF_PROG_TYPE_CGROUP_DEVICE program
        // (bpf/clab_devices.bpf.c) loaded with libbpf. Below ClabCgroups, which attaches it; its
        // Libbpf helpers (quiet logging, opening an embedded object) serve the tracer too.
        .target(name: "ClabDevices", dependencies: ["CLibBPF", "ClabSys"], plugins: ["BPFCompiler"]),
        // The host as clab uses it, below every host-side module: running tools, files and locks,
        // mount tables, where clab keeps its state, and where its shared files are.
        .target(name: "ClabHost", dependencies: ["ClabSpec", "ClabSys", "CShims"]),
        // Cgroups v1 and v2: placing a container's cgroups beneath clab's own, limits, the device
        // controller (v1 files, v2 ClabDevices' program), the freezer, removal.
        .target(name: "ClabCgroups", dependencies: ["ClabDevices", "ClabHost", "ClabSpec", "ClabSys"]),
        // The OCI image-spec documents (index, manifest, config, descriptors): pure types that the
        // image store and the registry client share.
        .target(name: "ClabOCI"),
        // The image store: layers, image configs, OCI image layouts in and out (tar, gzip, digests,
        // whiteouts), the built-in busybox image. Knows nothing of containers: the runtime tells
        // it which layers running containers hold.
        .target(name: "ClabImages", dependencies: ["ClabHost", "ClabOCI", "ClabSpec", "ClabSys", "CShims"]),
        // The runtime: each stage's host half (Stages/), containers and their state, exec,
        // lifecycle, kept containers, volumes, OCI bundles, image builds (RUN runs a container),
        // gc.
        .target(
            name: "ClabRuntime",
            dependencies: [
                "ClabCgroups", "ClabHost", "ClabSpec", "ClabSys", "CShims", "ClabNetlink", "ClabNetwork",
                "ClabSeccomp", "ClabDevices", "ClabImages", "ClabOCI",
            ]),
        // Isolation probes, shared by `clab check` and the test suites.
        .target(
            name: "ClabChecks",
            dependencies: [
                "ClabRuntime", "ClabCgroups", "ClabImages", "ClabHost", "ClabSpec", "ClabSys", "CShims",
                "ClabNetwork", "ClabNetlink", "ClabSeccomp",
            ]),
        // The teaching side, above the runtime and used only by the CLI: the lessons and labs
        // (share/lessons, share/labs), a student's lab progress, and the banner `clab step` prints.
        .target(name: "ClabLessons", dependencies: ["ClabRuntime", "ClabHost", "ClabSpec", "ClabSys", "ClabNetwork"]),
        // libbpf (Debian's libbpf-dev), the record layouts shared with the BPF program, and the
        // traced child's fork-to-execve in C.
        .systemLibrary(
            name: "CLibBPF", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev", "libelf-dev", "zlib1g-dev"])]),
        // Compiles bpf/*.bpf.c with the toolchain's clang (-target bpf) and embeds the objects.
        .plugin(name: "BPFCompiler", capability: .buildTool()),
        // `clab trace`: the eBPF syscall tracer's Swift side (loading, reading, decoding, output).
        .target(
            name: "ClabTrace", dependencies: ["CLibBPF", "CShims", "ClabSpec", "ClabSys", "ClabDevices"],
            plugins: ["BPFCompiler"]),
        // libseccomp (Debian's libseccomp-dev; static in release) and stage 12's seccomp profiles:
        // Docker/OCI JSON, Docker's default, compiled to the BPF bytes clab-init installs.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        .target(name: "ClabSeccomp", dependencies: ["CSeccomp", "ClabSpec", "ClabSys"]),
        // Command-line parsing and output; a library so tests can parse real argv.
        .target(
            name: "ClabCLI",
            dependencies: [
                "ClabRuntime", "ClabCgroups", "ClabImages", "ClabHost", "ClabSpec", "ClabSys", "ClabChecks",
                "ClabLessons", "ClabTrace", "ClabNetwork", "ClabNetlink", "ClabSeccomp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Release: fully static. libnftables (stage 11) is loaded on first use (CShims/nftables.c).
        .executableTarget(
            name: "clab", dependencies: ["ClabCLI"],
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-static-executable", "-l_FoundationCollections", "-l_FoundationCShims",
                        "-lswiftSynchronization",
                    ],
                    .when(configuration: .release))
            ]),
        // The OCI runtime command line (runc's) over the same runtime: podman/conmon drive it.
        // Release: fully static, as clab.
        .executableTarget(
            name: "clab-runtime", dependencies: ["ClabCLI"],
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-static-executable", "-l_FoundationCollections", "-l_FoundationCShims",
                        "-lswiftSynchronization",
                    ],
                    .when(configuration: .release))
            ]),
        // The Docker Engine API subset (`clabd`): NIO's HTTP/1 server in front of ClabRuntime, so
        // the docker CLI and `clab` drive one runtime. Its own executable: NIO's threads and size
        // stay out of the start-speed-critical `clab` (`clab daemon` execve's `clabd`).
        .target(
            name: "ClabDaemon",
            dependencies: [
                "ClabRuntime", "ClabCgroups", "ClabImages", "ClabHost", "ClabSpec", "ClabSys", "CShims",
                "ClabNetwork", "ClabRegistry",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        // Distribution API v2 client: push/pull between registries and the image store, login.
        .target(
            name: "ClabRegistry",
            dependencies: [
                "ClabImages", "ClabOCI", "ClabRuntime", "ClabHost", "ClabSys",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The NIO side of clab: `clab daemon` and `clab push|pull|login|logout` execve it.
        .executableTarget(name: "clabd", dependencies: ["ClabDaemon", "ClabRegistry"]),
        // Unit tests, per module: no root, no container, no clab binary; each imports only what
        // it tests.
        .testTarget(name: "ClabSysTests", dependencies: ["ClabSys"]),
        .testTarget(name: "ClabNetlinkTests", dependencies: ["ClabNetlink"]),
        .testTarget(name: "ClabNetworkTests", dependencies: ["ClabNetwork", "ClabNetlink", "ClabSys"]),
        .testTarget(name: "ClabSpecTests", dependencies: ["ClabSpec"]),
        .testTarget(name: "ClabInitTests", dependencies: ["ClabInit", "ClabSys"]),
        .testTarget(name: "ClabHostTests", dependencies: ["ClabHost", "ClabSys"]),
        .testTarget(name: "ClabImagesTests", dependencies: ["ClabImages", "ClabHost"]),
        .testTarget(name: "ClabCgroupsTests", dependencies: ["ClabCgroups", "ClabDevices", "ClabSys"]),
        .testTarget(
            name: "ClabRuntimeTests", dependencies: ["ClabCgroups", "ClabRuntime", "ClabHost", "ClabImages", "ClabSys"]),
        .testTarget(
            name: "ClabChecksTests", dependencies: ["ClabChecks", "ClabRuntime", "ClabHost", "ClabImages", "ClabSpec"]),
        .testTarget(name: "ClabTraceTests", dependencies: ["CLibBPF", "ClabTrace", "ClabSpec", "ClabCLI"]),
        .testTarget(
            name: "ClabCLITests",
            dependencies: [
                "ClabCLI", "ClabCgroups", "ClabRuntime", "ClabHost", "ClabImages", "ClabSpec", "ClabSys", "ClabLessons",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The system tests: real containers, as root, through the built clab, clab-init,
        // clab-runtime and clabd (TestSupport.swift finds them); a suite that needs root says so
        // and skips without it. Also the unit suites that share a file with root suites.
        .testTarget(
            name: "ClabSystemTests",
            dependencies: [
                "CShims", "CLibBPF", "ClabSys", "ClabSpec", "ClabInit", "ClabHost", "ClabCgroups", "ClabOCI",
                "ClabImages", "ClabRuntime", "ClabChecks", "ClabLessons", "ClabCLI", "ClabTrace", "ClabNetlink",
                "ClabNetwork", "ClabSeccomp", "ClabDevices", "ClabRegistry", "clab", "clab-init", "clab-runtime",
                "clabd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
