import Glibc

/// An error meant for a person: one line, no backtrace, and the exit status clab should use.
public struct ClabError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let exitCode: Int32

    public init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }

    public var description: String { message }
}

/// A failed system call: "pivot_root: Invalid argument".
public struct SyscallError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32 = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(errnoDescription(errno))" }
}

public func errnoDescription(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// `guard call(...) == 0` in one line: throws the call's name and errno on a negative result.
@discardableResult
public func check(_ result: Int32, _ call: @autoclosure () -> String) throws -> Int32 {
    if result < 0 { throw SyscallError(call()) }
    return result
}
