import ClabHost
import ClabRuntime
import ClabSeccomp
import ClabSpec
import ClabSys
import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// Lab 12: the learner's seccomp profile must make every syscall that changes a file's mode fail
/// with EPERM, and leave everything else alone. The verifier reads the profile with ClabSeccomp,
/// then proves it: two stage-12 containers run with `--security-opt seccomp=PROFILE`, one a
/// shell doing ordinary work, one the image's `chmod-probe`, which calls chmod, fchmod, fchmodat
/// and fchmodat2 by number. Both are clab's own busybox image; only the filter is the learner's.
public enum Lab12Verifier {
    /// The syscalls that change a file's mode, and why a profile that misses one fails.
    static let targets: [(name: String, why: String)] = [
        ("chmod", "busybox's chmod calls chmod(2)"),
        ("fchmod", "a program that has the file open calls fchmod(2) on its descriptor"),
        ("fchmodat", "coreutils' chmod, and glibc's chmod() on most machines, call fchmodat(2)"),
        (
            "fchmodat2",
            "fchmodat2(2) is new (Linux 6.6): a profile that lists what to refuse must keep up with every new syscall, which is why Docker's default lists what to allow"
        ),
    ]

    /// What the shell must do under the filter: fork, exec, pipes, files, directories.
    static let shellScript =
        "echo hello > /tmp/lab12 && cat /tmp/lab12 | tr a-z A-Z && mkdir /tmp/lab12.d && ls /tmp | grep -c lab12 && rm -r /tmp/lab12 /tmp/lab12.d && echo done"
    static let shellExpected = "HELLO\n2\ndone"
    static let timeout: Int32 = 10

    public static func verify(profile path: String, runtime: Runtime) -> [ProbeResult] {
        var r = LabResults(stage: 12)
        let validProperty = ProbeName(id: "lab12.profile-valid", wording: "the profile is a valid seccomp profile")
        let shellProperty = ProbeName(
            id: "lab12.shell-works", wording: "a shell still works under it (fork, exec, pipes, files)")
        func targetProperty(_ name: String) -> ProbeName {
            ProbeName(id: "lab12.refused.\(name)", wording: "\(name)(2) fails with EPERM")
        }

        // 1. The profile: the one-line error of `clab seccomp check`, if any.
        do {
            let profile = try SeccompProfile.load(path: path)
            let program = try profile.compile(capabilities: Capability.dockerDefault)
            r.add(
                validProperty, true,
                "\(path): unlisted syscalls get \(profile.defaultAction.rawValue); a filter of \(program.count / 8) BPF instructions",
                fix: "")
        } catch {
            r.add(
                validProperty, false, (error as? ClabError)?.message ?? "\(error)",
                fix: "fix the file and check it with `clab seccomp check \(path)`")
            r.add(shellProperty, false, "not tried: the profile is not valid", fix: "fix the profile first")
            for t in targets {
                r.add(
                    targetProperty(t.name), false, "not tried: the profile is not valid", fix: "fix the profile first")
            }
            return r.results
        }

        // 2. Everything else still works.
        let shell = run(["/bin/sh", "-c", shellScript], profile: path, runtime: runtime)
        let shellShown = "sh -c '\(shellScript)'"
        switch shell {
        case .failure(let error):
            r.add(shellProperty, false, "\(shellShown) could not run: \(error.message)", fix: "see the reason above")
        case .success(let out) where out.timedOut && out.output.trimmed.isEmpty:
            r.add(
                shellProperty, false, "the container could not even start its shell (nothing within \(timeout) s)",
                fix:
                    "your defaultAction refuses everything, even execve and exit: use \"defaultAction\": \"SCMP_ACT_ALLOW\" and list only the syscalls to refuse"
            )
        case .success(let out) where out.output.trimmed != shellExpected:
            let got = out.output.trimmed.split(separator: "\n").prefix(3).joined(separator: " | ")
            r.add(
                shellProperty, false,
                "\(shellShown) printed \(got.isEmpty ? "nothing" : "'\(got)'")\(out.timedOut ? " and hung" : ""), not 'HELLO | 2 | done'",
                fix:
                    "your profile refuses a syscall ordinary programs need: refuse only the chmod family and let the defaultAction allow the rest"
            )
        case .success:
            r.add(shellProperty, true, "\(shellShown): HELLO, 2, done", fix: "")
        }

        // 3. Every way to change a mode is refused, with EPERM.
        let probe = run(["chmod-probe"], profile: path, runtime: runtime)
        let answers: [String: String]
        var notTried: String?
        switch probe {
        case .failure(let error):
            answers = [:]
            notTried = "chmod-probe could not run: \(error.message)"
        case .success(let out):
            var found: [String: String] = [:]
            for line in out.output.split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                found[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmed
            }
            answers = found
            if found.isEmpty {
                let said = out.output.trimmed.split(separator: "\n").first.map(String.init) ?? "nothing"
                notTried =
                    out.timedOut
                    ? "chmod-probe did not start within \(timeout) s"
                    : "chmod-probe printed no answer (it said: \(said))"
            }
        }
        for t in targets {
            let property = targetProperty(t.name)
            guard let answer = answers[t.name] else {
                r.add(
                    property, false, "not tried: \(notTried ?? "chmod-probe gave no line for \(t.name)")",
                    fix: "the probe must be able to start: let execve, fork and write through")
                continue
            }
            let evidence = "chmod-probe: \(t.name): \(answer)"
            if answer.hasPrefix("EPERM") {
                r.add(property, true, evidence, fix: "")
            } else if answer == "ok" {
                r.add(property, false, evidence, fix: "\(t.why): add \"\(t.name)\" to your rule's names")
            } else if answer.hasPrefix("killed by signal") {
                r.add(
                    property, false, evidence,
                    fix:
                        "SCMP_ACT_KILL ends the program; use \"action\": \"SCMP_ACT_ERRNO\" with \"errnoRet\": 1 so it gets EPERM and can go on"
                )
            } else if answer.hasPrefix("not tried") {
                r.add(property, false, evidence, fix: "the probe could not make its file: let openat and write through")
            } else {
                r.add(
                    property, false, evidence,
                    fix: "refused, but not with EPERM: set \"errnoRet\": 1 (EPERM, what Docker's refusals return)")
            }
        }
        return r.results
    }

    struct Run {
        let output: String
        let timedOut: Bool
    }

    /// One stage-12 container of clab's busybox image with the learner's filter, output captured.
    /// A filter can leave init unable even to exit (exit_group refused too): after `timeout`
    /// seconds the container's init, ours, is killed by pid, and everything is removed.
    static func run(_ command: [String], profile: String, runtime: Runtime) -> Result<Run, ClabError> {
        do {
            var request = RunRequest(stage: try Stage.numbered(12), command: command)
            request.security.seccomp = .file(profile)
            try runtime.images.ensureBase(log: { _ in })
            let prepared = try runtime.prepare(request, log: { _ in })
            let (readEnd, writeEnd) = try makePipe()
            defer { close(readEnd) }
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            defer { if null >= 0 { close(null) } }
            let container = try runtime.makeContainer(prepared)
            defer { Runtime.remove(container, prepared) }
            // start() waits for init to report its execve, which never comes if the filter
            // refuses execve and exit_group: a watchdog kills init (ours, by pid) if start is
            // still waiting at the deadline. After start returns, the loop below takes over.
            let watch = Mutex<(pid: pid_t, started: Bool, fired: Bool)>((0, false, false))
            container.beforeGo.append { pid in watch.withLock { $0.pid = pid } }
            DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(timeout))) {
                watch.withLock {
                    if !$0.started && $0.pid > 0 {
                        kill($0.pid, SIGKILL)
                        $0.fired = true
                    }
                }
            }
            do {
                try container.start(stdio: (null, writeEnd, writeEnd))
            } catch {
                close(writeEnd)
                if watch.withLock({
                    $0.started = true
                    return $0.fired
                }) {
                    return .success(Run(output: "", timedOut: true))
                }
                throw error
            }
            close(writeEnd)
            if watch.withLock({
                $0.started = true
                return $0.fired
            }) {
                _ = container.wait()
                return .success(Run(output: "", timedOut: true))
            }
            let (output, timedOut) = Host.readAll(readEnd, timeout: timeout) { kill(container.pid, SIGKILL) }
            _ = container.wait()
            return .success(Run(output: output, timedOut: timedOut))
        } catch let error as ClabError {
            return .failure(error)
        } catch {
            return .failure(ClabError("\(error)"))
        }
    }
}
