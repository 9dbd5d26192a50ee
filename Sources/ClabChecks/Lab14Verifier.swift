import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 14: reading a trace. The learner runs `clab trace --step 7 --json DIR/trace.jsonl --
/// mknod /tmp/null c 1 3` and answers questions about it in DIR/answers.txt. The verifier first
/// checks the file is such a trace (clab trace's start record: stage 7, that command; its end
/// record: no event lost, as many syscalls as it counted), then derives every answer from the
/// learner's own file, never from a stored key: one answer (the container's pid) differs from
/// run to run. A wrong answer's fix says where to look, never what the answer is.
public enum Lab14Verifier {
    public static let stage = 7
    public static let command = ["mknod", "/tmp/null", "c", "1", "3"]
    static var traceCommand: String {
        "clab trace --step \(stage) --json DIR/trace.jsonl -- \(command.joined(separator: " "))"
    }

    /// The questions, in the answers file's order: key, the property's words, where to look.
    public static let questions: [(key: String, property: String, hint: String)] = [
        (
            "namespaces", "which system call made the container's namespaces",
            "find the call clab makes (comm \"clab\") with CLONE_NEW flags in its arguments: grep CLONE_NEW DIR/trace.jsonl"
        ),
        (
            "flags", "which CLONE_NEW* flags it passed",
            "name every CLONE_NEW* flag in that call's flags={...}, and nothing else (CLONE_PIDFD makes no namespace)"
        ),
        (
            "container-pid", "the host pid of the container's first process",
            "it is that call's return value (\"ret\"), the child's pid in the host's PID namespace; it changes with every run, so read it in your own trace"
        ),
        (
            "uid_map", "what clab wrote into the container's uid_map",
            "clab opens /proc/<pid>/uid_map, then writes one line to that fd: give the line's text, without quotes or \\n"
        ),
        (
            "pivot_root", "the arguments of pivot_root",
            "grep pivot_root DIR/trace.jsonl: give both arguments, separated by a space, without quotes"
        ),
        (
            "failed", "the call that made mknod fail, and its errno",
            "look at the calls of the process whose comm is mknod, after its execve: the last one with an errno. Give the system call's name as the trace spells it (a C library function may make another call) and the errno: NAME ERRNO, e.g. open ENOENT"
        ),
        (
            "execve", "how many execve calls the trace holds",
            "count the records whose \"syscall\" is execve: one per program started in the traced process tree"
        ),
    ]

    struct Record: Decodable {
        let type: String
        let version: Int?
        let mode: String?
        let step: Int?
        let command: [String]?
        let events: Int?
        let lost: Int?
        let pid: Int?
        let comm: String?
        let syscall: String?
        let args: [String]?
        let ret: Int64?
        let errno: String?
        let stage: String?
    }

    public static func verify(dir given: String) -> [ProbeResult] {
        let absolute = given.hasPrefix("/") ? given : FileManager.default.currentDirectoryPath + "/" + given
        let dir = URL(fileURLWithPath: absolute).standardizedFileURL.path
        var r = LabResults(stage: stage)
        let tracePath = dir + "/trace.jsonl"
        let answersPath = dir + "/answers.txt"
        let origin = ProbeName(
            id: "lab14.trace-origin",
            wording: "the trace is clab trace's, of stage \(stage) running `\(command.joined(separator: " "))`")
        func answer(_ key: String, _ property: String) -> ProbeName {
            ProbeName(id: "lab14.answer.\(key)", wording: "answer \(key): \(property)")
        }
        let records: [Record]
        switch load(tracePath) {
        case .failure(let error):
            r.add(origin, false, error.message, fix: "run \(traceCommand)")
            for q in questions {
                r.notChecked(answer(q.key, q.property), "no trace to check it against", fix: "run \(traceCommand)")
            }
            return r.results
        case .success(let read):
            records = read
        }
        let start = records.first
        let end = records.last
        let syscalls = records.filter { $0.type == "syscall" }
        var problems: [String] = []
        if start?.type != "start" || start?.version != 1 {
            problems.append("it does not begin with clab trace's start record")
        }
        if start?.mode != "step" || start?.step != stage {
            problems.append(
                "it traced \(start?.mode == "step" ? "stage \(start?.step ?? 0)" : "a host command"), not stage \(stage)"
            )
        }
        if start?.command != command {
            problems.append("it traced `\((start?.command ?? []).joined(separator: " "))`")
        }
        if end?.type != "end" {
            problems.append("it has no end record (was the trace cut short?)")
        } else if end?.lost != 0 {
            problems.append("the tracer lost \(end?.lost ?? 0) events")
        } else if end?.events != syscalls.count {
            problems.append("its end record counts \(end?.events ?? 0) syscalls, the file holds \(syscalls.count)")
        }
        r.add(
            origin, problems.isEmpty,
            problems.isEmpty
                ? "\(tracePath): stage \(stage), `\(command.joined(separator: " "))`, \(syscalls.count) syscalls, none lost"
                : "\(tracePath): \(problems.joined(separator: "; "))",
            fix: "run exactly \(traceCommand) (and do not edit the file)")

        let derived = derive(syscalls)
        let answers = FS.read(answersPath).map(parseAnswers)
        for q in questions {
            let property = answer(q.key, q.property)
            guard let answers else {
                r.notChecked(
                    property, "cannot read \(answersPath)",
                    fix: "write your answers in \(answersPath), one `\(q.key): ...` line each (`clab lab show 14`)")
                continue
            }
            guard let truth = derived[q.key] else {
                r.notChecked(
                    property, "the trace does not show it (is it a whole trace of the command?)",
                    fix: "run \(traceCommand)")
                continue
            }
            guard let given = answers[q.key], !given.isEmpty else {
                r.add(property, false, "no `\(q.key):` line in \(answersPath)", fix: q.hint)
                continue
            }
            let ok = normalize(q.key, given) == normalize(q.key, truth)
            r.add(
                property, ok,
                ok ? "\(given): the trace agrees" : "you answered \(given); your trace says otherwise", fix: q.hint)
        }
        return r.results
    }

    /// Every answer, from the trace's own records.
    static func derive(_ syscalls: [Record]) -> [String: String] {
        var out: [String: String] = [:]
        // The call that makes the namespaces: the first of clab's with CLONE_NEW flags.
        if let made = syscalls.first(where: {
            $0.comm == "clab" && ($0.args?.first?.contains("CLONE_NEW") ?? false) && ($0.ret ?? -1) > 0
        }) {
            out["namespaces"] = made.syscall
            let words = (made.args?.first ?? "").split(whereSeparator: { !($0.isLetter || $0 == "_") })
            out["flags"] = Set(words.filter { $0.hasPrefix("CLONE_NEW") }.map(String.init)).sorted().joined(
                separator: " ")
            out["container-pid"] = made.ret.map { String($0) }
        }
        // The uid_map: the fd openat returned for it, then clab's write to that fd.
        if let opened = syscalls.firstIndex(where: {
            $0.syscall == "openat" && ($0.args ?? []).contains { $0.hasSuffix("/uid_map\"") } && ($0.ret ?? -1) >= 0
        }), let fd = syscalls[opened].ret {
            let write = syscalls[opened...].first {
                $0.syscall == "write" && $0.pid == syscalls[opened].pid && $0.args?.first?.hasPrefix("\(fd)<") == true
            }
            out["uid_map"] = write?.args.flatMap { $0.count > 1 ? unquote($0[1]) : nil }
        }
        if let pivot = syscalls.first(where: { $0.syscall == "pivot_root" }), let args = pivot.args, args.count == 2 {
            out["pivot_root"] = args.map(unquote).joined(separator: " ")
        }
        // The command's process: its calls after its own execve; the last one that failed.
        if let exec = syscalls.lastIndex(where: {
            $0.syscall == "execve" && $0.comm == command[0] && $0.ret == 0
        }) {
            let pid = syscalls[exec].pid
            if let failed = syscalls[exec...].last(where: { $0.pid == pid && $0.errno != nil }) {
                out["failed"] = "\(failed.syscall ?? "?") \(failed.errno ?? "?")"
            }
        }
        out["execve"] = String(syscalls.filter { $0.syscall == "execve" || $0.syscall == "execveat" }.count)
        return out
    }

    /// "\"0 100000 65536\\n\"" -> "0 100000 65536": the trace's quoting and the newline off.
    static func unquote(_ arg: String) -> String {
        var s = Substring(arg)
        if s.hasPrefix("\"") { s = s.dropFirst() }
        if s.hasSuffix("\"") { s = s.dropLast() }
        if s.hasSuffix("\\n") { s = s.dropLast(2) }
        return String(s)
    }

    /// Answers compared as words: case, order of flags, quotes, "(2)" and "CLONE_" do not matter.
    static func normalize(_ key: String, _ text: String) -> String {
        var t = text.lowercased().replacing("(2)", with: " ").replacing("()", with: " ")
        t = String(t.map { $0 == "\"" || $0 == "'" || $0 == "," || $0 == "|" || $0 == "(" || $0 == ")" ? " " : $0 })
        var words = t.split(whereSeparator: \.isWhitespace).map(String.init)
        if key == "flags" {
            words = Set(words.map { $0.hasPrefix("clone_") ? String($0.dropFirst(6)) : $0 }).sorted()
        }
        return words.joined(separator: " ")
    }

    /// "key: value" lines; '#' starts a comment line.
    static func parseAnswers(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let l = line.trimmed
            guard !l.hasPrefix("#"), let colon = l.firstIndex(of: ":") else { continue }
            out[String(l[..<colon]).trimmed.lowercased()] = String(l[l.index(after: colon)...]).trimmed
        }
        return out
    }

    /// The trace's records, one JSON object a line (at most 64 MiB: a trace of this command is
    /// about 200 KB).
    static func load(_ path: String) -> Result<[Record], ClabError> {
        let file: (fd: Int32, size: Int)
        do { file = try LabFile.openRegular(path) } catch { return .failure(error) }
        let fd = file.fd
        defer { close(fd) }
        guard file.size <= 64 << 20 else { return .failure(ClabError("\(path) is larger than 64 MiB")) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return .failure(ClabError("\(path): \(errnoDescription(errno))")) }
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let decoder = JSONDecoder()
        var records: [Record] = []
        for (n, line) in text.split(separator: "\n").enumerated() {
            do {
                records.append(try decoder.decode(Record.self, from: Data(line.utf8)))
            } catch {
                return .failure(ClabError("\(path) line \(n + 1) is not a clab trace record (JSON, with a \"type\")"))
            }
        }
        guard !records.isEmpty else { return .failure(ClabError("\(path) is empty")) }
        return .success(records)
    }
}
