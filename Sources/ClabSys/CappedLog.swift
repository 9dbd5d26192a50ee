import Glibc

/// `container.log`, capped: the run directory is often tmpfs (RAM) and the container hostile,
/// so a container that prints forever must not fill it. At `maxSize` the file becomes
/// `container.log.1` (replacing the one before) and a new one starts, as Docker's json-file
/// driver does with max-size and max-file=2: at most 2 × maxSize on disk, the newest output kept.
public struct CappedLog {
    public static let rotatedSuffix = ".1"
    let path: String
    let maxSize: Int
    private var fd: Int32
    private var size: Int

    public init(path: String, maxSize: Int) {
        self.path = path
        self.maxSize = max(maxSize, 1)
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        var st = stat()
        size = fd >= 0 && fstat(fd, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Appends `bytes`, rotating whenever the file would pass the cap. Output that cannot be
    /// written (a full disk) is dropped: the container must not block on its supervisor.
    public mutating func write(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while !rest.isEmpty && fd >= 0 {
            if size >= maxSize { rotate() }
            let part = UnsafeRawBufferPointer(rebasing: rest.prefix(maxSize - size))
            var done = 0
            while done < part.count {
                let n = Glibc.write(fd, part.baseAddress.map { $0 + done }, part.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                done += n
            }
            size += done
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(done))
        }
    }

    /// Every step a rename, so both names always exist for `clab logs`: the current file also
    /// becomes `.1` (a second link, renamed over the old one), then a new empty file takes the name.
    private mutating func rotate() {
        close(fd)
        let rotated = path + Self.rotatedSuffix
        unlink(rotated + ".tmp")
        if link(path, rotated + ".tmp") == 0 { _ = rename(rotated + ".tmp", rotated) }
        fd = open(path + ".tmp", O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd >= 0 && rename(path + ".tmp", path) != 0 {
            close(fd)
            fd = -1
        }
        size = 0
    }
}
