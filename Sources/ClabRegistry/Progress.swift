/// One line of Docker's JSON progress stream (what `POST /images/create` and
/// `POST /images/{name}/push` answer, one JSON object per line, and what the docker CLI draws
/// as progress bars): a status for an id (a layer's short digest), bytes done of total, or an
/// error that ends the stream.
public struct ProgressMessage: Codable, Sendable, Equatable {
    public var status: String?
    public var id: String?
    public var progressDetail: Detail?
    public var progress: String?
    public var error: String?
    public var errorDetail: ErrorDetail?

    public struct Detail: Codable, Sendable, Equatable {
        public var current: Int?
        public var total: Int?
    }

    public struct ErrorDetail: Codable, Sendable, Equatable {
        public var message: String
    }

    public init(status: String, id: String? = nil, current: Int? = nil, total: Int? = nil) {
        self.status = status
        self.id = id
        if let current {
            progressDetail = Detail(current: current, total: total)
            progress = Self.bar(current: current, total: total)
        } else {
            progressDetail = Detail(current: nil, total: nil)
        }
    }

    public init(error: String) {
        self.error = error
        errorDetail = ErrorDetail(message: error)
    }

    /// The 12 hex digits Docker shows for a layer.
    public static func shortID(_ digest: String) -> String {
        String((digest.hasPrefix("sha256:") ? digest.dropFirst(7) : Substring(digest)).prefix(12))
    }

    /// Docker's text bar, `[=====>     ]  1.2MB/2.4MB`.
    static func bar(current: Int, total: Int?) -> String {
        guard let total, total > 0 else { return human(current) }
        let width = 50
        let done = min(width, current * width / total)
        let arrow = done < width ? ">" : ""
        let filled = String(repeating: "=", count: max(0, done - arrow.count)) + arrow
        return "[" + filled + String(repeating: " ", count: width - filled.count) + "] " + human(current) + "/"
            + human(total)
    }

    static func human(_ n: Int) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(n)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        if unit == 0 { return "\(n)B" }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)\(units[unit])"
    }
}

/// Where a push or pull reports its progress. Called from the task doing the transfer.
public typealias ProgressSink = @Sendable (ProgressMessage) -> Void
