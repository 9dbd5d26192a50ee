/// What clab and a detached container's supervisor (`clab-init --supervise`, ClabInit's
/// SupervisorProcess) agree on: the names of the supervisor's attach socket and control FIFO
/// in the container's directory, the framing of what it sends attached clients, and the
/// container log's default cap. The host opens, frames and caps with these; the supervisor
/// makes and writes them.
public enum SupervisorInterface {
    /// The log's default cap (`--log-max-size`), as Docker's json-file max-size is commonly set.
    public static let defaultLogMaxSize = 10 << 20
    /// The frame header before each chunk sent to attached clients (Docker's stdcopy header).
    public static let headerSize = 8
    /// The attach socket and control FIFO, in the container's directory.
    public static let attachName = "attach"
    public static let controlName = "control"
}
