import CLibBPF
import ClabSys
import FoundationEssentials
import Glibc

/// The device allow-list on cgroup v2, which has no devices.allow: clab's
/// BPF_PROG_TYPE_CGROUP_DEVICE program (bpf/clab_devices.bpf.c, embedded by the build), its rule
/// table filled from a `[DeviceRule]`, attached to a cgroup with bpf_prog_attach. The kernel
/// holds the attached program: it stays after clab exits and goes when the cgroup is removed.
public enum DeviceFilter {
    /// Loads the program with `rules` (anything else is denied) and attaches it to the cgroup
    /// directory `dir`. BPF_F_ALLOW_MULTI: a device program an ancestor attached the same way
    /// still runs too (the kernel allows a request only if every one of them does).
    public static func attach(_ rules: [DeviceRule], toCgroup dir: String) throws {
        guard rules.count <= Int(CLAB_DEVICE_RULES_MAX) else {
            throw ClabError("devices: \(rules.count) device rules, at most \(CLAB_DEVICE_RULES_MAX) fit clab's program")
        }
        Libbpf.quiet()
        guard let object = Libbpf.open(objectBytes, name: "clab_devices") else {
            throw ClabError("devices: libbpf could not open the device program: \(errnoDescription(errno))")
        }
        // The object (and its fds) goes here; an attached program is held by the cgroup.
        defer { bpf_object__close(object) }
        let rc = bpf_object__load(object)
        guard rc == 0 else {
            throw ClabError(
                "devices: the kernel refused clab's device program (BPF_PROG_TYPE_CGROUP_DEVICE): \(errnoDescription(-rc)) (CLAB_TRACE_DEBUG=1 shows libbpf's log)"
            )
        }
        guard let program = bpf_object__find_program_by_name(object, "check_device"),
            let map = bpf_object__find_map_by_name(object, "rules")
        else { throw ClabError("devices: the device program lacks check_device or rules (rebuild clab)") }
        let mapFD = bpf_map__fd(map)
        for (i, rule) in rules.enumerated() {
            var key = UInt32(i)
            var value = row(rule)
            guard bpf_map_update_elem(mapFD, &key, &value, UInt64(BPF_ANY)) == 0 else {
                throw ClabError("devices: cannot fill the device program's rules: \(errnoDescription(errno))")
            }
        }
        let cgroup = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard cgroup >= 0 else { throw ClabError("devices: open \(dir): \(errnoDescription(errno))") }
        defer { close(cgroup) }
        let attached = bpf_prog_attach(bpf_program__fd(program), cgroup, BPF_CGROUP_DEVICE, UInt32(BPF_F_ALLOW_MULTI))
        guard attached == 0 else {
            let err = errno
            let why =
                err == EPERM
                ? " (an ancestor cgroup holds a device program that allows no others below it)" : ""
            throw ClabError(
                "devices: cannot attach the device program to \(dir): \(errnoDescription(err))\(why)")
        }
    }

    /// How many device programs are attached to the cgroup directory `dir` itself (nil: cannot
    /// tell). Evidence for tests and `clab inspect`.
    public static func attachedPrograms(_ dir: String) -> Int? {
        let cgroup = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard cgroup >= 0 else { return nil }
        defer { close(cgroup) }
        var flags: UInt32 = 0
        var count: UInt32 = 0
        guard bpf_prog_query(cgroup, BPF_CGROUP_DEVICE, 0, &flags, nil, &count) == 0 else { return nil }
        return Int(count)
    }

    /// A rule as the program's table holds it.
    static func row(_ rule: DeviceRule) -> clab_device_rule {
        var row = clab_device_rule()
        switch rule.kind {
        case .all: row.type = UInt32(CLAB_DEVICE_BLOCK | CLAB_DEVICE_CHAR)
        case .block: row.type = UInt32(CLAB_DEVICE_BLOCK)
        case .char: row.type = UInt32(CLAB_DEVICE_CHAR)
        }
        row.major = rule.major ?? CLAB_DEVICE_ANY
        row.minor = rule.minor ?? CLAB_DEVICE_ANY
        row.access = rule.access.rawValue
        return row
    }

    /// The ELF object, decoded once.
    static let objectBytes: [UInt8] = bpfObject_clab_devices.withUTF8Buffer { text in
        Array(Data(base64Encoded: Data(text)) ?? Data())
    }
}
