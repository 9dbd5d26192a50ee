import Glibc

/// One environment variable, read with getenv(3). Foundation's ProcessInfo.environment builds
/// a dictionary of the whole environment on every call (~0.7 million instructions here), and
/// clab reads a few variables on every container start.
public enum Env {
    public static func get(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// `entries` with each NAME=VALUE of `set` set in turn: an earlier NAME= entry gives way and
    /// the new one goes last (Docker's rule for an image's ENV over the base, and -e over both).
    public static func setting(_ set: [String], in entries: [String]) -> [String] {
        set.reduce(entries) { entries, entry in
            let key = String(entry.prefix { $0 != "=" }) + "="
            return entries.filter { !$0.hasPrefix(key) } + [entry]
        }
    }
}
