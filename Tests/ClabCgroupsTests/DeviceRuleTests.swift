import ClabSys
import Testing

@testable import ClabCgroups
@testable import ClabDevices

@Suite("device rules")
struct DeviceRuleTests {
    @Test func dockerDefaultIsRuncsAllowList() {
        #expect(
            DeviceRule.dockerDefault.map(\.description) == [
                "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
                "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
            ])
    }

    @Test func parsesWhatItPrints() {
        for rule in DeviceRule.dockerDefault + [DeviceRule(.all, nil, nil, .rwm), DeviceRule(.block, 8, 0, .read)] {
            #expect(DeviceRule(parsing: rule.description) == rule)
        }
        for bad in ["", "c 1:3", "x 1:3 rwm", "c 1-3 rwm", "c 1:3 rwx", "c a:3 r", "c 1:3 ", "c 4294967295:0 r"] {
            #expect(DeviceRule(parsing: bad) == nil, "\(bad)")
        }
    }

    /// The BPF table's rows use the kernel's encoding (type BLOCK=1/CHAR=2, access MKNOD=1,
    /// READ=2, WRITE=4, "*" all ones).
    @Test func bpfRows() {
        let row = DeviceFilter.row(DeviceRule(.char, 136, nil, .rwm))
        #expect(row.type == 2 && row.major == 136 && row.minor == 0xFFFF_FFFF && row.access == 7)
        let all = DeviceFilter.row(DeviceRule(.all, nil, nil, .mknod))
        #expect(all.type == 3 && all.major == 0xFFFF_FFFF && all.access == 1)
        #expect(DeviceFilter.row(DeviceRule(.block, 8, 0, .read)).type == 1)
    }

    @Test func placementAsksForTheDevicesHierarchy() throws {
        let mountinfo = """
            32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
            35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
            36 31 0:33 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices
            39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
            """
        let cgroup = "8:pids:/\n5:devices:/\n4:memory:/process_api/x\n1:cpu:/\n"
        let driver = try CgroupDriver.detect(mountinfo: mountinfo, selfCgroup: cgroup)
        #expect(try driver.place(id: "c1", parent: nil).dirs["devices"] == nil)
        let placement = try driver.place(id: "c1", parent: nil, devices: true)
        #expect(placement.dirs["devices"] == "/sys/fs/cgroup/devices/clab/c1")
        #expect(placement.dirs["memory"] == "/sys/fs/cgroup/memory/process_api/x/clab/c1")
        let noDevices = try CgroupDriver.detect(
            mountinfo: mountinfo.split(separator: "\n").filter { !$0.contains("devices") }.joined(separator: "\n"),
            selfCgroup: cgroup)
        #expect(throws: ClabError.self) { try noDevices.place(id: "c1", parent: nil, devices: true) }
    }
}
