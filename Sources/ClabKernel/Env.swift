import Glibc

/// One environment variable, read with getenv(3). Foundation's ProcessInfo.environment builds
/// a dictionary of the whole environment on every call (~0.7 million instructions here), and
/// clab reads a few variables on every container start.
public enum Env {
    public static func get(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
