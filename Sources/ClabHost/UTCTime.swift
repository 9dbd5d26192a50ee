import Glibc

/// RFC 3339 times in UTC, without a date formatter (it loads time zone files, slow on the start
/// path): records, `clab events`, lab records, runc's state `created`, the Engine API.
public enum UTCTime {
    /// "2025-01-31T12:00:00Z"; with `fraction`, that many digits of it after the seconds
    /// ("…:00.123Z" for milliseconds: value 123, digits 3).
    public static func rfc3339(seconds: Int, fraction: (value: Int, digits: Int)? = nil) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        var text =
            "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
        if let fraction {
            let digits = String(fraction.value)
            text += "." + String(repeating: "0", count: max(0, fraction.digits - digits.count)) + digits
        }
        return text + "Z"
    }

    /// "2025-01-02T03:04:05.678Z" from milliseconds since the epoch.
    public static func milliseconds(_ milliseconds: Int) -> String {
        rfc3339(seconds: milliseconds / 1000, fraction: (milliseconds % 1000, 3))
    }

    /// Now, to the nanosecond, as runc writes `created`.
    public static func nowNanoseconds() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return rfc3339(seconds: Int(ts.tv_sec), fraction: (Int(ts.tv_nsec), 9))
    }
}
