import ClabSeccomp
import ClabSpec
import ClabSys
import Foundation
import Glibc
import Testing

/// Stage 12's seccomp profiles: Docker's default, Docker and OCI files, their errors, and the
/// compiled BPF program (run for real by a tiny installer, as clab-init will install it).
@Suite("Seccomp profiles")
struct SeccompTests {
    /// A scratch directory for profile files, removed by the caller.
    private func scratch() -> String {
        let dir = "/tmp/clab-seccomp-\(getpid())-\(UUID().uuidString.prefix(8))"
        mkdir(dir, 0o700)
        return dir
    }

    private func write(_ text: String, _ path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// A `struct sock_filter` of the program: code, jt, jf, k (host byte order).
    private func instruction(_ bytes: [UInt8], _ i: Int) -> (code: UInt16, k: UInt32) {
        let base = i * 8
        let code = UInt16(bytes[base]) | UInt16(bytes[base + 1]) << 8
        let k = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[base + 4 + $1]) << (8 * UInt32($1)) }
        return (code, k)
    }

    @Test func dockerDefaultCompilesAndCapabilitiesChangeIt() throws {
        let profile = SeccompProfile.dockerDefault
        let docker = try profile.compile(capabilities: Capability.dockerDefault)
        let all = try profile.compile(capabilities: Set(Capability.allCases))
        for program in [docker, all] {
            #expect(program.count % 8 == 0)
            #expect(program.count / 8 > 100 && program.count / 8 <= 4096)
            // The first instruction loads seccomp_data.arch (BPF_LD|BPF_W|BPF_ABS, offset 4): a
            // filter must check the architecture before it trusts a syscall number.
            let first = instruction(program, 0)
            #expect(first.code == 0x20 && first.k == 4)
        }
        #expect(docker != all)
        #expect(all.count > docker.count)

        // The conditional rules as moby applies them: 15 of 33 rules for Docker's 14
        // capabilities on x86_64 (from kernel 4.8), 26 with all of them.
        #expect(profile.rules(for: Capability.dockerDefault).count == 15)
        #expect(profile.rules(for: Set(Capability.allCases)).count == 26)
        let dockerRules = profile.rules(for: Capability.dockerDefault)
        // clone only without namespace flags, clone3 → ENOSYS (so glibc falls back to clone).
        #expect(dockerRules.contains { $0.names == ["clone"] && $0.args.first?.op == .maskedEqual })
        #expect(dockerRules.contains { $0.names == ["clone3"] && $0.action == .errno && $0.errnoRet == UInt32(ENOSYS) })
        #expect(!dockerRules.contains { $0.names.contains("mount") || $0.names.contains("unshare") })
        #expect(!dockerRules.contains { $0.names.contains("ptrace") && $0.includes?.caps.isEmpty == false })
        let adminRules = profile.rules(for: Capability.dockerDefault.union([.sysAdmin]))
        #expect(adminRules.contains { $0.names.contains("mount") && $0.names.contains("clone3") })
        #expect(!adminRules.contains { $0.names == ["clone3"] && $0.action == .errno })
        #expect(profile.rules(for: [.sysModule]).contains { $0.names.contains("init_module") })
        #expect(profile.rules(for: [.sysPtrace]).contains { $0.names.contains("kcmp") })
        #expect(profile.rules(for: [.bpf]).contains { $0.names == ["bpf"] })
        #expect(profile.rules(for: [.perfmon]).contains { $0.names == ["perf_event_open"] })
        // minKernel: process_vm_readv & co. need 4.8.
        #expect(!profile.rules(for: [], kernel: SeccompKernelVersion(4, 4)).contains { $0.names.contains("ptrace") })
        #expect(profile.rules(for: [], kernel: SeccompKernelVersion(6, 18)).contains { $0.names.contains("ptrace") })
    }

    @Test func dockerFormatFileParses() throws {
        let json = """
            {
              "defaultAction": "SCMP_ACT_ERRNO",
              "defaultErrnoRet": 1,
              "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": null}
              ],
              "syscalls": [
                {"names": ["read", "write", "exit_group", "execve"], "action": "SCMP_ACT_ALLOW"},
                {"name": "personality", "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}], "comment": "query only"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"], "minKernel": "4.8"}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["SYS_ADMIN"], "arches": ["s390", "s390x"]}},
                {"names": ["s390_runtime_instr"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
                {"names": ["nosuchcall_on_s390"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}}
              ]
            }
            """
        let p = try SeccompProfile.parse(Array(json.utf8), source: "docker.json")
        #expect(p.defaultAction == .errno && p.defaultErrnoRet == 1)
        #expect(
            p.archMap == [
                SeccompArchMap("SCMP_ARCH_X86_64", ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
                SeccompArchMap("SCMP_ARCH_AARCH64"),
            ])
        #expect(p.filterArchitectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        #expect(p.syscalls.count == 6)
        #expect(p.syscalls[1].names == ["personality"] && p.syscalls[1].comment == "query only")
        #expect(p.syscalls[1].args == [SeccompArg(index: 0, value: 0xFFFF_FFFF, op: .equal)])
        #expect(p.syscalls[2].includes == SeccompCondition(caps: [.sysAdmin], minKernel: SeccompKernelVersion(4, 8)))
        #expect(p.syscalls[3].excludes?.caps == [.sysAdmin])
        // An unknown name in a rule for another architecture never reaches libseccomp.
        #expect(
            p.rules(for: Capability.dockerDefault).map(\.names) == [
                ["read", "write", "exit_group", "execve"], ["personality"], ["clone"],
            ])
        _ = try p.compile(capabilities: Capability.dockerDefault)
    }

    @Test func ociFormatParses() throws {
        // config.json's linux.seccomp, as runc reads it.
        let json = """
            {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
             "flags": ["SECCOMP_FILTER_FLAG_LOG"],
             "syscalls": [
               {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
               {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
               {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
               {"names": ["getpid"], "action": "SCMP_ACT_LOG"}
             ]}
            """
        let p = try SeccompProfile.parse(Array(json.utf8), source: "config.json")
        #expect(p.defaultAction == .allow)
        #expect(p.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        #expect(p.installFlags == 2)
        #expect(p.syscalls[0] == SeccompRule(["mkdir", "mkdirat"], .errno, errnoRet: 13))
        #expect(p.syscalls[1].args.count == 2)
        let program = try p.compile(capabilities: [])
        #expect(program.count % 8 == 0 && program.count > 0)
    }

    @Test(arguments: [
        (
            "{\"defaultAction\": \"SCMP_ACT_ERRNO\",, }",
            "not valid JSON at line 1, column 36: expected a key in double quotes"
        ),
        ("{\"defaultAction\": \"SCMP_ACT_ERRNO\"", "not valid JSON at line 1, column 35: expected '}'"),
        ("", "not valid JSON at line 1, column 1"),
        ("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultAction\": \"SCMP_ACT_ALLOW\"}", "appears twice"),
        (
            "{\"defaultAction\": \"SCMP_ACT_ERNO\"}",
            "defaultAction: unknown action 'SCMP_ACT_ERNO' (one of SCMP_ACT_KILL"
        ),
        (rule(#""names": ["read"], "action": "SCMP_ACT_ALOW""#), "syscalls[0].action: unknown action 'SCMP_ACT_ALOW'"),
        (rule(#""names": ["read"], "action": "SCMP_ACT_NOTIFY""#), "SCMP_ACT_NOTIFY needs a seccomp agent"),
        (
            rule(#""names": ["nosuchcall"], "action": "SCMP_ACT_ALLOW""#),
            "syscall 'nosuchcall' (syscalls[0]) is not known on x86_64 (check the name in `man 2 syscalls`)"
        ),
        (
            rule(
                #""names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQQ"}]"#
            ),
            "syscalls[0].args[0].op: unknown operator 'SCMP_CMP_EQQ'"
        ),
        (
            rule(
                #""names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]"#
            ),
            "syscalls[0].args[0].index is 6: a syscall has six arguments, index 0 to 5"
        ),
        (
            rule(
                #""names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]"#
            ),
            "syscalls[0].args[0].value is -1, expected a whole number"
        ),
        (rule(#""names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoret": 1"#), "syscalls[0].errnoret: unknown field"),
        (rule(#""names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1"#), "only applies to SCMP_ACT_ERRNO"),
        (rule(#""names": ["read"], "name": "write", "action": "SCMP_ACT_ALLOW""#), "both 'name' and 'names'"),
        (
            rule(#""names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_NOPE"]}"#),
            "syscalls[0].includes.caps[0]: no such capability 'CAP_NOPE'"
        ),
        (
            rule(#""names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}"#),
            "syscalls[0].includes.minKernel is '4', expected \"<kernel>.<major>\""
        ),
        ("{\"defaultAciton\": \"SCMP_ACT_ERRNO\"}", "defaultAciton: unknown field"),
        ("{\"syscalls\": []}", "no defaultAction"),
        ("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": [\"x86_64\"]}", "unknown architecture 'x86_64'"),
        ("[]", "the profile is a list, expected an object"),
    ])
    func badProfileIsOneClearLine(json: String, message: String) throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/profile.json"
        try write(json, path)
        do {
            _ = try SeccompProfile.load(path: path)
            Issue.record("accepted: \(json)")
        } catch let error as ClabError {
            #expect(error.exitCode == 2)
            #expect(error.message.hasPrefix("seccomp profile \(path): "), "\(error.message)")
            #expect(error.message.contains(message), "\(error.message)")
            #expect(!error.message.contains("\n"), "\(error.message)")
        }
    }

    private static func rule(_ fields: String) -> String {
        "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\(fields)}]}"
    }

    @Test func unknownNamesDockerListsAreSkippedNotErrors() throws {
        // Real syscalls newer than Debian's libseccomp 2.5.4: Docker's default lists them, and a
        // profile copied from it must still load; they stay at the default action.
        let json = Self.rule(
            #""names": ["read", "execve", "exit_group", "mseal", "listmount"], "action": "SCMP_ACT_ALLOW""#)
        let p = try SeccompProfile.parse(Array(json.utf8), source: "new.json")
        #expect(p.skippedNames == ["mseal", "listmount"])
        _ = try p.compile(capabilities: [])
    }

    @Test func cliDefaultRoundTripsAndCheckSaysWhatItDoes() throws {
        let out = try runProcess([TestEnv.clab, "seccomp", "default"])
        #expect(out.status == 0, "\(out.stderr)")
        let parsed = try SeccompProfile.parse(Array(out.stdout.utf8), source: "stdout")
        #expect(parsed == SeccompProfile.dockerDefault)
        #expect(parsed.dockerJSON() == out.stdout)

        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(out.stdout, dir + "/p.json")
        let check = try runProcess([TestEnv.clab, "seccomp", "check", dir + "/p.json", "--cap-add", "SYS_ADMIN"])
        #expect(check.status == 0, "\(check.stderr)")
        // SYS_ADMIN adds its rule and drops the two that restrict clone and clone3.
        #expect(check.stdout.contains("with 15 capabilities: 14 of 33 rules apply"), "\(check.stdout)")

        try write(out.stdout.replacingOccurrences(of: "\"mkdirat\"", with: "\"mkdriat\""), dir + "/typo.json")
        let bad = try runProcess([TestEnv.clab, "seccomp", "check", dir + "/typo.json"])
        #expect(bad.status == 2)
        #expect(
            bad.stderr
                == "clab: seccomp profile \(dir)/typo.json: syscall 'mkdriat' (syscalls[0]) is not known on x86_64 (check the name in `man 2 syscalls`)\n"
        )
    }

    /// The compiled bytes, installed the way clab-init will (no_new_privs, then
    /// seccomp(SECCOMP_SET_MODE_FILTER), then execve), by a 20-line C program built here.
    @Test func compiledFilterIsEnforcedByTheKernel() throws {
        guard let cc = ["/usr/bin/cc", "/usr/bin/gcc"].first(where: { (path: String) in access(path, X_OK) == 0 })
        else {
            Issue.record("no C compiler (apt-get install gcc libc6-dev)")
            return
        }
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            #include <linux/filter.h>
            #include <linux/seccomp.h>
            #include <stdio.h>
            #include <sys/prctl.h>
            #include <sys/syscall.h>
            #include <unistd.h>
            static unsigned char buf[65536];
            int main(int argc, char **argv) {
                FILE *f = fopen(argv[1], "rb");
                size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
                struct sock_fprog prog = {(unsigned short)(n / 8), (struct sock_filter *)buf};
                if (n == 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
                    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) { perror("install"); return 99; }
                execv(argv[2], argv + 2);
                perror("execv");
                return 98;
            }
            """, dir + "/install.c")
        let built = try runProcess([cc, "-O1", "-o", dir + "/install", dir + "/install.c"])
        #expect(built.status == 0, "\(built.stderr)")
        guard built.status == 0 else { return }

        func run(_ program: [UInt8], _ argv: [String]) throws -> Output {
            try Data(program).write(to: URL(fileURLWithPath: dir + "/filter.bpf"))
            return try runProcess([dir + "/install", dir + "/filter.bpf"] + argv)
        }

        // A learner's profile: everything allowed but mkdir, which gets EACCES.
        let json = #"""
            {"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
            """#
        let noMkdir = try SeccompProfile.parse(Array(json.utf8), source: "nomkdir.json").compile(capabilities: [])
        let blocked = try run(noMkdir, ["/bin/mkdir", dir + "/made"])
        #expect(blocked.status != 0 && blocked.stderr.contains("Permission denied"), "\(blocked.stderr)")
        #expect(access(dir + "/made", F_OK) != 0)
        #expect(try run(noMkdir, ["/bin/sh", "-c", "echo ok"]).stdout == "ok\n")

        // Docker's default: a shell that forks works (clone3 → ENOSYS, glibc falls back to clone),
        // but new namespaces are refused without CAP_SYS_ADMIN, and allowed with it.
        let docker = try SeccompProfile.dockerDefault.compile(capabilities: Capability.dockerDefault)
        let shell = try run(docker, ["/bin/sh", "-c", "/bin/echo forked; exit 3"])
        #expect(shell.status == 3 && shell.stdout == "forked\n", "\(shell.stderr)")
        let unshare = try run(docker, ["/usr/bin/unshare", "--user", "/bin/true"])
        #expect(unshare.status != 0 && unshare.stderr.contains("Operation not permitted"), "\(unshare.stderr)")
        let admin = try SeccompProfile.dockerDefault.compile(capabilities: Capability.dockerDefault.union([.sysAdmin]))
        let allowed = try run(admin, ["/usr/bin/unshare", "--user", "/bin/true"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
    }
}
