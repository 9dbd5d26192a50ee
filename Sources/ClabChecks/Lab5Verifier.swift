import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 5: an IPC and a network namespace by hand (lessons 5 and 6). The process must own both,
/// hold a System V shared memory segment in its IPC namespace that the host's does not list,
/// and have lo, up, as its only device, with no route out. Its /proc/<pid>/net files show its
/// network namespace from the host; its IPC namespace is seen by `clab-init --probe sysvipc`,
/// which joins it (/proc/sysvipc/shm shows the reader's namespace, whatever /proc it is read
/// through), and lo's flags by `--probe links`. Nothing of the process is executed.
public enum Lab5Verifier {
    public static func verify(pid: Int32, layouts: [StateLayout]) throws -> [ProbeResult] {
        let p = try ProcessInspector(pid: pid)
        var r = LabResults(byHand: pid, layouts: layouts, stage: 5)
        let ownIPC = r.addOwns(p, .ipc, "own IPC namespace", fix: "unshare --ipc gives it a System V IPC of its own")
        let net = p.owns(.net)
        r.results.append(
            ProbeResult(
                id: "lab5.ns-own.net", stage: 6, property: "own network namespace", passed: net.0, evidence: net.1,
                fix: "unshare --net (or ip netns add NAME, then ip netns exec NAME ...)"))

        // The segments of its IPC namespace, seen from inside it, against the host's.
        let segment = ProbeName(
            id: "lab5.segment-inside", wording: "a System V shared memory segment in its namespace")
        let hidden = ProbeName(id: "lab5.segment-hidden", wording: "the host does not see its segment")
        let host = Self.segments(FS.read("/proc/sysvipc/shm") ?? "")
        let seen = try p.probe("sysvipc")
        if seen.status != 0 {
            let why = seen.output.trimmed.isEmpty ? "the probe failed" : seen.output.trimmed
            r.notChecked(segment, why, fix: "give the pid of a running process")
            r.notChecked(hidden, why, fix: "give the pid of a running process")
        } else {
            let theirs = Self.segments(seen.output)
            let shown =
                theirs.isEmpty
                ? "none"
                : theirs.prefix(3).map { "key \($0.key), shmid \($0.id), \($0.size) bytes" }.joined(separator: "; ")
            r.add(
                segment, ownIPC && !theirs.isEmpty,
                "its /proc/sysvipc/shm (read from inside its IPC namespace): \(theirs.count) segment\(theirs.count == 1 ? "" : "s")\(theirs.isEmpty ? "" : ": \(shown)")",
                fix: !ownIPC
                    ? "its segments are the host's: make it with unshare --ipc first"
                    : "make one inside the namespace, after unshare: ipcmk -M 4096 (ipcmk run before unshare, or from another shell, lands on the host)"
            )
            let onHost = theirs.filter { host.contains($0) }
            r.add(
                hidden, ownIPC && !theirs.isEmpty && onHost.isEmpty,
                !ownIPC
                    ? "it shares the host's IPC namespace: its segments are the host's (the host's /proc/sysvipc/shm lists \(onHost.count) of them)"
                    : "the host's /proc/sysvipc/shm: \(host.count) segment\(host.count == 1 ? "" : "s"), \(onHost.isEmpty ? "none of its own" : "\(onHost.count) of them its own")",
                fix: ownIPC
                    ? "make a segment inside the namespace: ipcmk -M 4096"
                    : "unshare --ipc, then ipcmk -M 4096 inside: a new IPC namespace starts empty and the host cannot see into it"
            )
        }

        // Its network devices, from its own /proc/<pid>/net (the namespace's view).
        let only = ProbeName(id: "lab5.devices-lo-only", wording: "only lo exists")
        let devices = (FS.read("/proc/\(pid)/net/dev") ?? "").split(separator: "\n").dropFirst(2).compactMap {
            line -> String? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return String(line[..<colon].trimmingPrefix(while: { $0 == " " }))
        }
        if devices.isEmpty {
            r.notChecked(only, "cannot read /proc/\(pid)/net/dev", fix: "give the pid of a running process")
        } else {
            // A loaded ipip/sit/gre/vti module gives every new namespace its fallback device: the
            // kernel's own, down, never one of the host's.
            let fallbacks = devices.filter(NetworkProbes.tunnelFallbackDevices.contains)
            let others = devices.filter { !NetworkProbes.tunnelFallbackDevices.contains($0) && $0 != "lo" }
            r.results.append(
                ProbeResult(
                    name: only, stage: 6, passed: net.0 && others.isEmpty,
                    evidence:
                        "/proc/\(pid)/net/dev: \(devices.joined(separator: " "))\(fallbacks.isEmpty ? "" : " (\(fallbacks.joined(separator: " ")): the kernel's tunnel fallbacks, down, not the host's)")",
                    fix: net.0
                        ? "a new network namespace holds only lo: move or delete the others (ip link del NAME)"
                        : "these are the host's devices: unshare --net"))
        }
        let up = ProbeName(id: "lab5.lo-up", wording: "lo is up")
        let links = try p.probe("links")
        let loLine = links.output.split(separator: "\n").first { $0.hasPrefix("lo ") }
        let flags = loLine.flatMap { Int($0.dropFirst(3)) }
        if links.status != 0 || flags == nil {
            let why = links.status != 0 ? links.output.trimmed : loLine.map { "lo: \($0.dropFirst(3))" } ?? "no lo"
            r.results.append(
                ProbeResult(
                    name: up, stage: 6, passed: false, evidence: "not checked: \(why)",
                    fix: "give the pid of a running process in its own network namespace"))
        } else {
            let isUp = (flags ?? 0) & Int(IFF_UP) != 0
            r.results.append(
                ProbeResult(
                    name: up, stage: 6, passed: net.0 && isUp,
                    evidence:
                        "lo's flags inside (SIOCGIFFLAGS): \(isUp ? "UP" : "DOWN")\((flags ?? 0) & Int(IFF_LOOPBACK) != 0 ? ",LOOPBACK" : "")",
                    fix: net.0
                        ? "a new namespace's lo starts down: ip link set lo up, inside it"
                        : "that is the host's lo: unshare --net, then ip link set lo up inside"))
        }
        let route = ProbeName(id: "lab5.no-route", wording: "no route out")
        if let v4 = FS.read("/proc/\(pid)/net/route") {
            let v6 = FS.read("/proc/\(pid)/net/ipv6_route") ?? ""
            let v4Devices = v4.split(separator: "\n").dropFirst().compactMap {
                $0.split(whereSeparator: \.isWhitespace).first.map(String.init)
            }
            // ipv6_route lists every table, the local one too: a route out is one through a
            // device other than lo.
            let v6Devices = v6.split(separator: "\n").compactMap {
                $0.split(whereSeparator: \.isWhitespace).last.map(String.init)
            }
            let out = Set((v4Devices + v6Devices).filter { $0 != "lo" })
            r.results.append(
                ProbeResult(
                    name: route, stage: 6, passed: net.0 && out.isEmpty,
                    evidence:
                        "/proc/\(pid)/net/route and ipv6_route: \(out.isEmpty ? "no route but through lo" : "routes through \(out.sorted().joined(separator: ", "))")",
                    fix: net.0
                        ? "nothing should lead out of this namespace yet (that is lesson 11): remove the other devices"
                        : "these are the host's routes: unshare --net"))
        } else {
            r.results.append(
                ProbeResult(
                    name: route, stage: 6, passed: false,
                    evidence: "not checked: cannot read /proc/\(pid)/net/route",
                    fix: "give the pid of a running process"))
        }
        return r.results
    }

    struct Segment: Hashable {
        let key: String
        let id: String
        let size: String
        let ctime: String
    }

    /// The rows of a /proc/sysvipc/shm: key, shmid, size and ctime identify a segment (a
    /// segment has them in every view; another namespace's segment 0 is not the host's 0).
    static func segments(_ text: String) -> [Segment] {
        text.split(separator: "\n").dropFirst().compactMap { line in
            let f = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard f.count >= 14 else { return nil }
            return Segment(key: f[0], id: f[1], size: f[3], ctime: f[13])
        }
    }
}
