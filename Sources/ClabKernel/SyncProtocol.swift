import Glibc

/// The wire format for init failures on the sync socket.
public enum InitReport {
    /// From init (Swift): "M" + the whole line.
    public static func encode(_ message: String) -> [UInt8] { [UInt8(ascii: "M")] + Array(message.utf8) }

    public static func decode(_ bytes: [UInt8], stage: Int) -> String {
        guard let kind = bytes.first else { return "stage \(stage): init failed" }
        let body = String(decoding: bytes.dropFirst(), as: UTF8.self)
        if kind == UInt8(ascii: "M") { return body }
        // From the C child: "E" + step letter + errno, before anything in Swift ran.
        let step = body.first.map(String.init) ?? "?"
        let err = Int32(body.dropFirst()) ?? 0
        let call: String
        switch step {
        case "g": call = "setgroups"
        case "G": call = "setresgid(0, 0, 0)"
        case "U": call = "setresuid(0, 0, 0)"
        case "P": call = "prctl(PR_SET_PDEATHSIG)"
        case "S": call = "setsid"
        case "T": call = "ioctl(TIOCSCTTY) on the container's pseudo-terminal"
        default: call = "execve(clab init)"
        }
        let owner = (step == "g" || step == "G" || step == "U") ? 7 : stage
        return "stage \(owner): \(call): \(errnoDescription(err))"
    }
}

/// NUL-terminated C string arrays, alive for the duration of `body`.
public func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let array = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
    for (i, s) in strings.enumerated() { array[i] = strdup(s) }
    array[strings.count] = nil
    defer {
        for i in 0..<strings.count { free(array[i]) }
        array.deallocate()
    }
    return body(UnsafePointer(array))
}
