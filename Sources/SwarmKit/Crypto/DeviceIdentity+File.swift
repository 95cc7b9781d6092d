internal import CSodium

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// Why the device key file could not be used.
public struct DeviceIdentityError: Error, CustomStringConvertible, Sendable {
    /// The file the error is about.
    public let path: String
    /// What went wrong and what to do.
    public let reason: String

    public var description: String { "device key \(path): \(reason)" }
}

extension DeviceIdentity {
    /// The file's first 8 bytes; the next 32 are the Ed25519 seed. Total size 40 bytes.
    static let fileMagic: [UInt8] = Array("harpdk1\n".utf8)

    /// The usual key file: `$XDG_CONFIG_HOME/harp/device.key`, else `$HOME/.config/harp/device.key`;
    /// nil when neither variable is set.
    public static var defaultPath: String? {
        if let config = getenv("XDG_CONFIG_HOME"), config.pointee != 0 {
            return String(cString: config) + "/harp/device.key"
        }
        if let home = getenv("HOME"), home.pointee != 0 {
            return String(cString: home) + "/.config/harp/device.key"
        }
        return nil
    }

    /// Loads the device key from `path`, creating it (and missing parent directories, mode 0700) on
    /// first use.
    ///
    /// The file is created with mode 0600 from the first byte: it is written under a temporary name
    /// opened `O_CREAT | O_EXCL` with mode 0600, synced, then hard-linked to `path`, so a crash never
    /// leaves a half-written key and two processes starting at once agree on one key. A file readable
    /// by group or others is refused (as ssh does), as is one of the wrong size or format.
    public static func loadOrCreate(at path: String) throws(DeviceIdentityError) -> DeviceIdentity {
        if let existing = try load(at: path) { return existing }
        let identity = generate()
        try createDirectories(for: path)
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DeviceIdentityError(path: temporary, reason: "cannot create: \(errnoText())") }
        var bytes = fileMagic + [UInt8](repeating: 0, count: 32)
        identity.seed.withUnsafeBytes { seed in
            for index in 0..<32 { bytes[8 + index] = seed[index] }
        }
        let written = write(fd, bytes, bytes.count)
        bytes.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == 40, synced else {
            unlink(temporary)
            throw DeviceIdentityError(path: temporary, reason: "cannot write the key: \(errnoText())")
        }
        let linked = link(temporary, path) == 0
        let linkErrno = errno
        unlink(temporary)
        if linked { return identity }
        if linkErrno == EEXIST, let winner = try load(at: path) { return winner }
        throw DeviceIdentityError(path: path, reason: "cannot create: \(String(cString: strerror(linkErrno)))")
    }

    /// Reads an existing key file; nil when there is none.
    static func load(at path: String) throws(DeviceIdentityError) -> DeviceIdentity? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw DeviceIdentityError(path: path, reason: "cannot open: \(errnoText())")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DeviceIdentityError(path: path, reason: "cannot stat: \(errnoText())")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw DeviceIdentityError(path: path, reason: "readable by group or others; run chmod 600 on it")
        }
        guard info.st_size == 40 else {
            throw DeviceIdentityError(path: path, reason: "not a harp device key (size \(info.st_size), expected 40)")
        }
        var bytes = [UInt8](repeating: 0, count: 41)
        let count = read(fd, &bytes, 41)
        defer { bytes.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, $0.count) } }
        guard count == 40, Array(bytes[0..<8]) == fileMagic else {
            throw DeviceIdentityError(path: path, reason: "not a harp device key (bad header)")
        }
        return DeviceIdentity(seed: SecureBytes(copying: bytes[8..<40]))
    }

    private static func createDirectories(for path: String) throws(DeviceIdentityError) {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        var current = path.hasPrefix("/") ? "" : "."
        if path.hasPrefix("/") { components = components.dropFirst() }
        for component in components where !component.isEmpty {
            current += "/" + component
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw DeviceIdentityError(path: current, reason: "cannot create directory: \(errnoText())")
            }
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
