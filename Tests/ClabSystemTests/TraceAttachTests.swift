import CLibBPF
import Foundation
import Glibc
import Testing

@testable import ClabTrace

/// Where clab's syscall programs hook in: the raw_syscalls tracepoints, or (experimental, with
/// CLAB_TRACE_ATTACH=fentry) fentry/fexit on the kernel's syscall dispatch. Where the kernel
/// loads fentry, both must show the same calls.
@Suite("trace · attach points", tracerAvailable)
struct TraceAttachTests {
    static let tracepoint = ["CLAB_TRACE_ATTACH": "tracepoint"]
    /// The attach points this kernel loads: the tracepoints, and fentry where it loads (the
    /// parametrised trace tests run at each).
    static let attachPoints: [String] = TraceProgram.fentryLoads() ? ["tracepoint", "fentry"] : ["tracepoint"]
    /// fentry where it loads: what the tracepoints are compared with (here, themselves).
    static var fentryIfItLoads: [String: String] {
        TraceProgram.fentryLoads() ? ["CLAB_TRACE_ATTACH": "fentry"] : [:]
    }

    func trace(_ command: [String], env: [String: String] = [:], extra: [String] = []) throws -> (Output, JSONTrace) {
        let file = TestEnv.root + "/trace-attach-\(UUID().uuidString.prefix(8)).jsonl"
        defer { unlink(file) }
        let out = try runProcess(
            [TestEnv.clab, "trace", "--host", "--json", file] + extra + ["--"] + command, env: env)
        return (out, try JSONTrace(path: file))
    }

    func attach(_ trace: JSONTrace) -> String? { trace.lines.first?["attach"] as? String }

    /// The default is the tracepoints (fentry is experimental, opt-in); forcing fentry either
    /// uses it or, where the kernel refuses it (as here), fails in one line that says why.
    @Test func theDefaultIsTheTracepointsAndFentryIsOptIn() throws {
        let (forced, forcedTrace) = try trace(["true"], env: ["CLAB_TRACE_ATTACH": "fentry"])
        let (out, trace) = try trace(["true"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(attach(trace) == "tracepoint")
        #expect(!out.stderr.contains("syscalls hooked by"), "the default adds no line: \(out.stderr)")
        if forced.status == 0 {
            #expect(attach(forcedTrace) == "fentry")
        } else {
            #expect(forced.stderr.split(separator: "\n").count == 1, "\(forced.stderr)")
            #expect(forced.stderr.contains("CLAB_TRACE_ATTACH=fentry: this kernel refuses"), "\(forced.stderr)")
        }
    }

    /// The marker uprobe attaches to clab-init's clab_mark (what labels init's calls); a binary
    /// without the symbol gets a reason to print, and count mode does not load it.
    @Test func theMarkerUprobeAttachesToClabInit() throws {
        let program = try TraceProgram(mode: .events, bufferBytes: 1 << 20, attachPoint: .tracepoint)
        #expect(program.attachMarks(binary: TestEnv.runtime.initPath) == nil)
        let why = program.attachMarks(binary: "/etc/hostname")
        #expect(why?.hasPrefix("cannot attach a uprobe to clab_mark in /etc/hostname: ") == true, "\(why ?? "")")
        program.detach()
        let counting = try TraceProgram(mode: .count, bufferBytes: 1 << 20, attachPoint: .tracepoint)
        #expect(counting.attachMarks(binary: TestEnv.runtime.initPath) != nil)
    }

    /// The fentry probe's own reading of the kernel's BTF finds what libbpf finds, and nothing
    /// for a name the kernel lacks (x32_sys_call where the x32 ABI is off, as here).
    @Test func theProbeFindsKernelFunctionsAsLibbpfDoes() throws {
        let names = ["x64_sys_call", "ia32_sys_call", "do_nanosleep", "x32_sys_call", "no_such_function_clab"]
        let ours = try #require(TraceProgram.kernelFunctionIDs(names))
        let btf = try #require(btf__load_vmlinux_btf())
        defer { btf__free(btf) }
        for name in names {
            let id = btf__find_by_name_kind(btf, name, 12)  // BTF_KIND_FUNC
            #expect(ours[name] == (id > 0 ? UInt32(id) : nil), "\(name)")
        }
        #expect(ours["x64_sys_call"] != nil && ours["do_nanosleep"] != nil)
        #expect(TraceProgram.kernelFunctionIDs(["x64_sys_call"], path: "/etc/hostname") == nil)
    }

    @Test func forcedTracepointsAreUsedAndNamed() throws {
        let (out, trace) = try trace(["true"], env: Self.tracepoint)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(attach(trace) == "tracepoint")
        let summary = try runProcess(
            [TestEnv.clab, "trace", "--host", "--summary", "--", "true"], env: Self.tracepoint)
        let lines = summary.stderr.split(separator: "\n")
        #expect(lines.last == "clab trace: counted in the kernel, 0 lost", "\(summary.stderr)")
        #expect(!summary.stderr.contains("syscalls hooked by"), "\(summary.stderr)")
    }

    @Test func anUnknownAttachPointIsOneLine() throws {
        let out = try runProcess([TestEnv.clab, "trace", "--host", "--", "true"], env: ["CLAB_TRACE_ATTACH": "kprobe"])
        #expect(out.status == 2)
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(out.stderr.contains("CLAB_TRACE_ATTACH=kprobe: say fentry or tracepoint"))
    }

    /// Both ways in see the same calls, the failing ones, the exit_group that never returns and
    /// the end of each process (the fexit of exit_group never comes; execve returns through it).
    @Test func bothAttachPointsShowTheSameCalls() throws {
        let command = ["sh", "-c", "cat /etc/hostname >/dev/null; ls /nonexistent-clab 2>/dev/null; exit 3"]
        let (out, ours) = try trace(command, env: Self.fentryIfItLoads)
        let (tpOut, theirs) = try trace(command, env: Self.tracepoint)
        #expect(out.status == 3 && tpOut.status == 3, "\(out.stderr) \(tpOut.stderr)")
        #expect(ours.lost == 0 && theirs.lost == 0)
        #expect(ours.counts == theirs.counts)
        for trace in [ours, theirs] {
            let exits = trace.syscalls.filter { $0["syscall"] as? String == "exit_group" }
            #expect(exits.count == 3)
            #expect(exits.allSatisfy { $0["ret"] is NSNull })
            #expect(trace.syscalls.filter { $0["syscall"] as? String == "execve" && $0["ret"] as? Int == 0 }.count == 3)
            #expect(
                trace.syscalls.contains {
                    $0["syscall"] as? String == "statx" || $0["syscall"] as? String == "newfstatat"
                        || $0["syscall"] as? String == "lstat" ? $0["errno"] as? String == "ENOENT" : false
                })
            #expect(trace.lines.contains { $0["type"] as? String == "exit" && $0["exit_code"] as? Int == 3 })
        }
    }

    @Test func bothAttachPointsCountTheSameInTheKernel() throws {
        func counts(_ env: [String: String]) throws -> [String: String] {
            let out = try runProcess(
                [TestEnv.clab, "trace", "--host", "--summary", "--", "cat", "/etc/hostname"], env: env)
            #expect(out.status == 0, "\(out.stderr)")
            var result: [String: String] = [:]
            for row in out.stderr.split(separator: "\n") {
                let fields = row.split(separator: " ")
                guard fields.count >= 5, Double(fields[0]) != nil, let name = fields.last else { continue }
                result[String(name)] = String(fields[3])
            }
            return result
        }
        let ours = try counts(Self.fentryIfItLoads)
        #expect(ours["execve"] == "1" && ours["openat"] != nil)
        #expect(ours == (try counts(Self.tracepoint)))
    }
}
