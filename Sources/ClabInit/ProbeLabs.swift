import CShims
import ClabSys
import Glibc

/// The probes of labs 3 and 6, which must act inside the learner's namespaces rather than read
/// them: an orphan for a PID 1 to reap, a datagram between two network namespaces. Both run
/// only clab's own code (no execve) and leave no process of theirs behind.
extension ProbeProcess {
    /// `--probe orphan PID`: does PID 1 of PID's namespace reap an orphan? A child made in that
    /// namespace forks a grandchild and exits at once, so the kernel hands the grandchild to the
    /// namespace's init (its child reaper). The grandchild waits until it is adopted, reports,
    /// and exits: from then on only its parent, that PID 1, can remove it (wait(2)).
    /// Exit 0: reaped; 1: still a zombie after `patience` ms; 2: the probe could not run.
    /// The grandchild always exits by itself; the zombie a PID 1 that does not reap keeps is the
    /// evidence, and it goes with that PID 1 (the kernel reaps a dying namespace).
    static func orphan(pid: Int32, patience: Int = 2000) throws -> Int32 {
        let target = try ProbeTarget(pid: pid)
        // An orphan in the host's namespace would go to the host's init: refuse.
        guard let pidNS = try ProbeTarget.own(target.procFD, pid, "pid") else {
            fail(
                "process \(pid) shares the host's PID namespace: the probe makes orphans only in a namespace of its own"
            )
        }
        let status = String(decoding: try readAll(at: target.procFD, "\(pid)/status"), as: UTF8.self)
        let nspid = status.split(separator: "\n").first { $0.hasPrefix("NSpid:") }?.split(separator: "\t").last
        guard nspid == "1" else {
            fail(
                "process \(pid) is not PID 1 of its namespace (NSpid ends in \(nspid ?? "?")): its orphans go to that PID 1"
            )
        }
        let fds = try makePipe()
        // Only children made from now on are in the namespace; this process stays outside it.
        try check(clab_setns(pidNS, Int32(CLONE_NEWPID)), "setns pid")
        close(pidNS)
        let child = clab_fork()
        if child < 0 { throw SyscallError("fork") }
        if child == 0 {
            // Nothing of ours may hold the caller's output pipe open: only the report pipe.
            close(fds.read)
            for fd: Int32 in 0...2 { close(fd) }
            // Not dumpable: the namespace's root, which the orphan's ids become, cannot ptrace
            // it (its memory belongs to the host's user namespace, where that root holds nothing).
            _ = clab_set_dumpable(0)
            // The target's user namespace and its root's ids: none of the host's credentials.
            guard (try? target.enterUser()) != nil else { _exit(3) }
            // What the orphan does not need, it does not hold: the target's root and namespaces.
            for fd in [target.rootFD, target.userNS, target.mountNS].compactMap({ $0 }) { close(fd) }
            let grandchild = clab_fork()
            if grandchild == 0 { orphanBody(procFD: target.procFD, report: fds.write) }
            _exit(grandchild > 0 ? 0 : 4)
        }
        close(fds.write)
        var childStatus: Int32 = 0
        while waitpid(child, &childStatus, 0) < 0 && errno == EINTR {}
        let exitCode = (childStatus >> 8) & 0xff
        guard childStatus & 0x7f == 0, exitCode == 0 else {
            fail("the probe's child in the namespace could not \(exitCode == 3 ? "join its user namespace" : "fork")")
        }
        // The grandchild's line: "HOSTPID STARTTIME adopted|alone", then EOF when it exits.
        let report = readReport(fds.read, timeoutMs: 5000)
        close(fds.read)
        let fields = report.split(separator: " ").map(String.init)
        guard fields.count == 3, let orphanPid = Int32(fields[0]) else {
            fail("the orphan did not report (it said: \(report.isEmpty ? "nothing" : report))")
        }
        guard fields[2] == "adopted" else {
            fail("the orphan (host pid \(orphanPid)) was not handed to PID 1 within 2 s")
        }
        // Reaped: its /proc entry is gone (or the pid is someone else's: another start time).
        var waited = 0
        var state = "?"
        while true {
            let stat = (try? readAll(at: target.procFD, "\(orphanPid)/stat")).map {
                String(decoding: $0, as: UTF8.self)
            }
            let parsed = stat.flatMap(ProcStat.init)
            if parsed == nil || "\(parsed?.startTime ?? 0)" != fields[1] {
                try say(
                    "reaped: the orphan (host pid \(orphanPid)) was adopted by PID 1 and reaped within \(max(waited, 10)) ms\n"
                )
                return 0
            }
            state = String(parsed?.state ?? "?")
            if waited >= patience { break }
            usleep(10_000)
            waited += 10
        }
        try say(
            "not reaped: the orphan (host pid \(orphanPid)) was adopted by PID 1 and is still \(state == "Z" ? "a zombie (state Z)" : "there (state \(state))") after \(patience / 1000) s\n"
        )
        return 1
    }

    /// The orphan: its host pid (the host's /proc, opened before any setns, names it), its start
    /// time, and whether it was adopted by the namespace's PID 1 (getppid() reads 1 there).
    static func orphanBody(procFD: Int32, report: Int32) -> Never {
        var link = [CChar](repeating: 0, count: 32)
        let n = readlinkat(procFD, "self", &link, link.count - 1)
        let hostPid = n > 0 ? cString(link.prefix(n)) : "?"
        let stat = (try? readAll(at: procFD, "\(hostPid)/stat")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let start = ProcStat(stat).map { "\($0.startTime)" } ?? "?"
        // The host's /proc is not the orphan's to keep while its new parent looks on.
        close(procFD)
        var adopted = false
        for _ in 0..<2000 {
            if getppid() == 1 {
                adopted = true
                break
            }
            usleep(1000)
        }
        let line = Array("\(hostPid) \(start) \(adopted ? "adopted" : "alone")".utf8)
        _ = line.withUnsafeBytes { write(report, $0.baseAddress, $0.count) }
        _exit(0)
    }

    /// Everything written to `fd` until EOF, or what came within `timeoutMs`.
    static func readReport(_ fd: Int32, timeoutMs: Int32) -> String {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        var left = timeoutMs
        while left > 0 {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 100)
            if ready < 0 && errno != EINTR { break }
            left -= 100
            if ready <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self).trimmed
    }

    /// `--probe udp NSFILE_A NSFILE_B ADDRESS`: a datagram from network namespace A to ADDRESS in
    /// namespace B. A socket belongs to the namespace its creator was in when it made it, so one
    /// process makes the receiver in B (bound to ADDRESS: B must hold it), then the sender in A,
    /// and sends a nonce. Exit 0: B received it (the line says from which address); 1: it did
    /// not arrive; 2: the probe could not run (a file that is no network namespace, say).
    static func udp(_ args: [String]) throws -> Int32 {
        guard args.count == 3 else { fail("usage: clab-init --probe udp NSFILE_A NSFILE_B ADDRESS") }
        var address = in_addr()
        guard inet_pton(AF_INET, args[2], &address) == 1 else { fail("'\(args[2])' is no IPv4 address") }
        let a = try check(open(args[0], O_RDONLY | O_CLOEXEC), "open \(args[0])")
        let b = try check(open(args[1], O_RDONLY | O_CLOEXEC), "open \(args[1])")
        let host = try check(open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), "open /proc/self/ns/net")
        var st = [stat(), stat(), stat()]
        for (i, fd) in [a, b, host].enumerated() { try check(fstat(fd, &st[i]), "fstat") }
        for (i, name) in args.prefix(2).enumerated() where st[i].st_ino == st[2].st_ino && st[i].st_dev == st[2].st_dev
        {
            fail("\(name) is the host's own network namespace: the probe sends only between namespaces of their own")
        }
        try check(setgroups(0, nil), "setgroups")
        // setns refuses (EINVAL) a file that is not a network namespace.
        try check(clab_setns(b, Int32(CLONE_NEWNET)), "setns \(args[1])")
        let receiver = try check(
            socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), "socket")
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr = address
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(receiver, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if bound < 0 {
            let err = errno
            try say(
                "\(args[1]) cannot receive on \(args[2]): bind: \(errnoDescription(err))\(err == EADDRNOTAVAIL ? " (no interface there that is up holds \(args[2]))" : "")\n"
            )
            return 1
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(receiver, $0, &length) }
        }
        try check(clab_setns(a, Int32(CLONE_NEWNET)), "setns \(args[0])")
        let sender = try check(socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), "socket")
        // Back home before anything else: nothing more is made in the learner's namespaces.
        try check(clab_setns(host, Int32(CLONE_NEWNET)), "setns back to the host's namespace")
        let nonce = Array("clab-lab6-\(getpid())-\(time(nil))".utf8)
        let sent = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { to in
                nonce.withUnsafeBytes {
                    sendto(sender, $0.baseAddress, $0.count, 0, to, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if sent < 0 {
            try say("\(args[0]) cannot send to \(args[2]): sendto: \(errnoDescription(errno))\n")
            return 1
        }
        var waited: Int32 = 0
        while waited < 1500 {
            var p = pollfd(fd: receiver, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 100)
            waited += 100
            if ready <= 0 { continue }
            var from = sockaddr_in()
            var fromLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = withUnsafeMutablePointer(to: &from) { f in
                f.withMemoryRebound(to: sockaddr.self, capacity: 1) { fp in
                    buffer.withUnsafeMutableBytes {
                        recvfrom(receiver, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT), fp, &fromLength)
                    }
                }
            }
            // Anything else that reached the port is not ours: keep waiting for the nonce.
            guard n > 0, Array(buffer[0..<n]) == nonce else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            _ = inet_ntop(AF_INET, &from.sin_addr, &text, socklen_t(text.count))
            try say(
                "received: \(args[1]) got the datagram on \(args[2]) port \(UInt16(bigEndian: local.sin_port)), from \(cString(text.prefix { $0 != 0 }))\n"
            )
            return 0
        }
        try say(
            "lost: \(args[0]) sent a datagram to \(args[2]) port \(UInt16(bigEndian: local.sin_port)); \(args[1]) did not receive it within 1.5 s\n"
        )
        return 1
    }
}
