import CShims
import Glibc

/// The kernel calls with which stages 1, 2, 4 and 6 move init into its root, name its host and
/// bring up its loopback, behind one protocol (youki's `Syscall` trait): clab-init passes
/// `KernelCalls`, which makes them; a unit test passes a recorder, and checks their order, and
/// that a refused call stops its stage with an error naming it, without root and without a
/// namespace. Each returns what the kernel call returns: 0, or -1 with errno set.
protocol StageCalls {
    func chdir(_ path: String) -> Int32
    func chroot(_ path: String) -> Int32
    func sethostname(_ name: String) -> Int32
    func mount(_ source: String?, _ target: String, _ type: String?, _ flags: UInt, _ data: String?) -> Int32
    func pivotRoot(_ newRoot: String, _ putOld: String) -> Int32
    func umount2(_ target: String, _ flags: Int32) -> Int32
    /// `ip link set NAME up`: SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP.
    func linkUp(_ name: String) -> Int32
}

/// The calls themselves.
struct KernelCalls: StageCalls {
    func chdir(_ path: String) -> Int32 { Glibc.chdir(path) }
    func chroot(_ path: String) -> Int32 { Glibc.chroot(path) }
    func sethostname(_ name: String) -> Int32 { name.withCString { Glibc.sethostname($0, strlen($0)) } }
    func mount(_ source: String?, _ target: String, _ type: String?, _ flags: UInt, _ data: String?) -> Int32 {
        Glibc.mount(source, target, type, flags, data)
    }
    func pivotRoot(_ newRoot: String, _ putOld: String) -> Int32 { clab_pivot_root(newRoot, putOld) }
    func umount2(_ target: String, _ flags: Int32) -> Int32 { Glibc.umount2(target, flags) }
    func linkUp(_ name: String) -> Int32 { clab_link_up(name) }
}
