import FoundationEssentials
import Glibc

/// What a user asks for with `clab step N`.
public struct RunRequest: Sendable {
    public var stage: Stage
    /// nil: the interactive shell.
    public var command: [String]?
    public var hostname: String?
    public var idMapping: IDMapping

    public init(stage: Stage, command: [String]? = nil, hostname: String? = nil, idMapping: IDMapping = .defaultRange) {
        self.stage = stage
        self.command = command
        self.hostname = hostname
        self.idMapping = idMapping
    }
}

/// The entry point to run containers: a state layout plus the binary that serves as init.
public struct Runtime: Sendable {
    public let layout: StateLayout
    public let initPath: String

    public init(layout: StateLayout, initPath: String = Runtime.defaultInitPath) {
        self.layout = layout
        self.initPath = initPath
    }

    /// `clab-init` beside the running clab binary (SwiftPM and `make install` put them together).
    public static var defaultInitPath: String {
        Path.dirname(Resources.executablePath()) + "/clab-init"
    }

    public var images: ImageStore { ImageStore(layout: layout) }

    /// Checks that do not depend on the request: root, and a usable state directory.
    public static func requireRoot() throws {
        guard geteuid() == 0 else {
            throw ClabError(
                "clab must run as root: it creates namespaces, mounts and cgroups (try: sudo clab ...)", exitCode: 1)
        }
    }

    /// Turns a request into a spec: validates it, prepares the state directory and the image.
    /// Nothing container-specific exists on the host until `Container.start`.
    public func prepare(_ request: RunRequest, log: (String) -> Void) throws -> ContainerSpec {
        if let hostname = request.hostname { try ContainerSpec.validateHostname(hostname) }
        if request.stage.has(.user), let why = Host.userNamespacesAvailable() {
            throw ClabError("stage 7 needs user namespaces, but \(why)")
        }
        try layout.prepare()
        try images.ensureBase(log: log)
        var imageRoot = images.rootfs(ImageStore.baseName)
        var mapping: IDMapping?
        if request.stage.has(.user) {
            mapping = request.idMapping
            imageRoot = try images.ensureShifted(ImageStore.baseName, base: request.idMapping.host, log: log)
            try Self.requireSearchable(imageRoot)
            try Self.requireSearchable(layout.containersDir)
            try Self.requireSearchable(initPath)
        }
        let id = ContainerSpec.newID()
        let hostname = request.hostname ?? id
        var env = ContainerSpec.baseEnv(stage: request.stage, hostname: hostname)
        let command: [String]
        if let given = request.command, !given.isEmpty {
            command = given
        } else {
            command = ["/bin/sh"]
            env += ContainerSpec.defaultShellEnv(stage: request.stage)
        }
        return ContainerSpec(
            id: id, stageNumber: request.stage.number, hostname: hostname, imageRoot: imageRoot,
            bundleDir: layout.containerDir(id), command: command, env: env, idMapping: mapping)
    }

    /// Start, wait, clean up. Returns how the command ended.
    public func run(
        _ spec: ContainerSpec, stdio: (Int32, Int32, Int32) = (0, 1, 2), forwardSignals: Bool = false,
        beforeGo: [(pid_t) throws -> Void] = [], onEscalate: ((Int32) -> Void)? = nil
    ) throws -> ExitStatus {
        let container = Container(spec: spec, layout: layout, initPath: initPath)
        container.beforeGo = beforeGo
        defer { container.cleanup() }
        try container.start(stdio: stdio)
        return container.wait(forwardSignals: forwardSignals, onEscalate: onEscalate)
    }

    /// In a user namespace container root is uid 100000 to the host: every directory on the way
    /// to its files must let "others" search it. Say so before the kernel says EACCES.
    static func requireSearchable(_ path: String) throws {
        var dir = path
        while dir != "/" && !dir.isEmpty {
            dir = Path.dirname(dir)
            var st = stat()
            if stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_mode & 0o001 == 0 {
                throw ClabError(
                    "stage 7: container root is uid 100000 on the host and cannot enter \(dir) (mode \(String(st.st_mode & 0o7777, radix: 8))): run `chmod o+x \(dir)` or use a --root below a searchable directory"
                )
            }
        }
    }
}
