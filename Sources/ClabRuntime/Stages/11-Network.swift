import ClabHost
import ClabNetlink
import ClabNetwork
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// Stage 11's decisions for one container, made by `prepare` and carried out around clone3.
public struct NetworkPlan: Sendable {
    public var mode: NetworkMode
    public var ports: [PortPublish]
    /// `--net container:NAME`: that container's first process (host pid) and its start time.
    public var joinPid: pid_t?
    /// Its clab (the parent of `joinPid`) and that clab's start time, to recheck `joinPid` when
    /// its namespace is opened.
    public var joinParent: pid_t?
    public var joinParentStart: UInt64?
    /// The network's definition, for bridge mode.
    public var config: NetworkConfig?
}

/// Stage 11's host half: which network namespace the container gets, and for a bridge network
/// the plumbing (ClabNetwork.NetworkStore.attach) between clone3 and "go", undone at exit.
extension Runtime {
    public var networks: NetworkStore { NetworkStore(root: layout.root, runDir: layout.runDir) }

    /// Checks `--net`, `-p` and `--name` before anything is created.
    func planNetwork(_ request: RunRequest) throws -> NetworkPlan? {
        guard request.stage.connectsNetwork else {
            if request.network != nil {
                throw ClabError("--net needs stage 11 or later: container networking arrives at stage 11", exitCode: 2)
            }
            if !request.publish.isEmpty {
                throw ClabError("-p needs stage 11 or later: published ports arrive at stage 11", exitCode: 2)
            }
            return nil
        }
        let mode = request.network ?? .bridge(NetworkStore.defaultName)
        var plan = NetworkPlan(mode: mode, ports: request.publish)
        if !request.publish.isEmpty {
            guard case .bridge = mode else {
                throw ClabError(
                    "-p publishes a port of a container with its own address: it needs a bridge network, not --net \(mode)",
                    exitCode: 2)
            }
            try Firewall.checkAvailable(request.publish)
        }
        switch mode {
        case .bridge(let name):
            plan.config = try networks.config(name)
        case .container(let name):
            guard let target = ContainerState.running(in: layout).first(where: { $0.name == name }),
                let pid = target.initPid
            else {
                throw ClabError(
                    "--net container:\(name): no running container is named \(name) (start one with --name \(name); `clab ps` lists them)",
                    exitCode: 2)
            }
            guard Host.namespaceID(pid: "\(pid)", .net) != Host.namespaceID(.net) else {
                throw ClabError(
                    "--net container:\(name): \(name) uses the host's network namespace; use --net host", exitCode: 2)
            }
            plan.joinPid = pid
            plan.joinParent = target.clabPid
            plan.joinParentStart = target.clabStartTime
        case .none, .host:
            break
        }
        return plan
    }

    /// The spec's side: whose network namespace, and a user network's hosts file at /etc/hosts.
    func applyNetwork(_ plan: NetworkPlan, to spec: inout ContainerSpec) throws {
        switch plan.mode {
        case .host: spec.network = .host
        case .container: spec.network = .joined
        case .none: break
        case .bridge(let name):
            if name != NetworkStore.defaultName {
                try networks.prepareHosts(name)
                spec.volumes.append(VolumeSpec(source: networks.hostsFile(name), target: "/etc/hosts", readOnly: true))
            }
        }
    }

    /// The network namespace of `--net container:NAME`'s process `pid`, read from its state by
    /// `planNetwork`. If that container ended since, its pid may name another process now (in
    /// the host's namespace, say): after the open, the process must still be the child of the
    /// target's clab (pid and start time), and the namespace not clab's own.
    static func openJoinedNetwork(pid: pid_t, parent: pid_t?, parentStart: UInt64?) throws -> Int32 {
        let fd = open("/proc/\(pid)/ns/net", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ClabError(
                "--net container: its process \(pid) is gone: \(SyscallError("open /proc/\(pid)/ns/net"))")
        }
        var joined = stat()
        var own = stat()
        let sameAsOwn =
            fstat(fd, &joined) == 0 && stat("/proc/self/ns/net", &own) == 0
            && joined.st_ino == own.st_ino && joined.st_dev == own.st_dev
        guard let parent, Host.parentPid(pid) == parent, Host.isAlive(pid: parent, startTime: parentStart), !sameAsOwn
        else {
            close(fd)
            throw ClabError(
                "--net container: process \(pid) is no longer that container's (it ended): start it again and retry")
        }
        return fd
    }

    /// Before "go": join the named container's namespace (clone3 starts there), or attach to
    /// the bridge once the child's network namespace exists.
    func hookNetwork(_ plan: NetworkPlan, name: String?, into container: Container) throws {
        if let pid = plan.joinPid {
            let fd = try StageMark.host(11) {
                try Self.openJoinedNetwork(pid: pid, parent: plan.joinParent, parentStart: plan.joinParentStart)
            }
            container.joinNetworkFD = fd
            container.afterStart.append { close(fd) }
        }
        guard case .bridge(let network) = plan.mode else { return }
        let store = networks
        let id = container.spec.id
        func attach(_ pid: pid_t) throws {
            let fd = open("/proc/\(pid)/ns/net", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SyscallError("open /proc/\(pid)/ns/net") }
            defer { close(fd) }
            do {
                let attachment = try store.attach(
                    containerID: id, name: name, network: network, netnsFD: fd, ports: plan.ports)
                container.networkAddress = "\(attachment.address)/\(attachment.prefix)"
            } catch let error as ClabError {
                throw ClabError("stage 11: \(error.message)", exitCode: error.exitCode)
            } catch {
                throw ClabError("stage 11: \(error)")
            }
        }
        container.beforeGo.append { pid in try StageMark.host(11) { try attach(pid) } }
    }

    /// At exit: a bridge network's veth and address go (the default bridge with its last
    /// container); other modes left nothing on the host.
    static func unhookNetwork(_ plan: NetworkPlan?, networks: NetworkStore?, containerID: String) {
        guard case .bridge = plan?.mode else { return }
        StageMark.host(11) { networks?.detach(containerID: containerID) }
    }
}
