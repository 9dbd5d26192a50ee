import CLibBPF
import Glibc

/// What every libbpf user in clab does the same way: quiet logging and opening an embedded
/// object. Here, in the lowest module that loads BPF (the device program), so the tracer
/// (ClabTrace, above ClabRuntime) uses the same code.
public enum Libbpf {
    /// libbpf prints to stderr by default; clab reports failures itself in one line.
    /// CLAB_TRACE_DEBUG=1 shows libbpf's messages.
    public static func quiet() {
        if getenv("CLAB_TRACE_DEBUG") != nil {
            libbpf_set_print { _, format, args in
                guard let format, let args else { return 0 }
                return vdprintf(2, format, args)
            }
        } else {
            libbpf_set_print { _, _, _ in 0 }
        }
    }

    /// bpf_object__open_mem on an embedded ELF object, named `name`; nil with errno set.
    public static func open(_ bytes: [UInt8], name: String) -> OpaquePointer? {
        bytes.withUnsafeBytes { raw in
            name.withCString { name in
                // LIBBPF_OPTS is a macro Swift cannot import: fill the struct by hand, `sz` first.
                var opts = bpf_object_open_opts()
                opts.sz = MemoryLayout<bpf_object_open_opts>.size
                opts.object_name = name
                return bpf_object__open_mem(raw.baseAddress, raw.count, &opts)
            }
        }
    }
}
