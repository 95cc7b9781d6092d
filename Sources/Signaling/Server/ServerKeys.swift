import Foundation
public import VersionLog

/// The signaling server's two version-log keys, kept in its data directory (docs/proofs.md §4):
///
/// - `log.key`: the log key (signed-note type `0x01`), which signs the log's checkpoints and attests enrollments and
///   nothing else; its name is the log's origin;
/// - `witness.key`: the witness key (`cosignature/v1`, type `0x04`), with which this server cosigns the checkpoints
///   of the other logs of its federation.
///
/// Each file holds one line, the C2SP private key `PRIVATE+KEY+name+hhhhhhhh+base64(type || seed)`. A missing file is
/// created with mode 0600 from its first byte and filled before it takes its name (written under a temporary name,
/// then hard-linked into place, which fails rather than replaces if another process made it meanwhile), so a crash
/// never leaves a key file half written and two processes starting at once agree on one key.
public struct ServerKeys: Sendable {
    /// The log's checkpoint key.
    public let log: NoteSigningKey
    /// The witness's cosigning key.
    public let witness: NoteSigningKey

    /// The file names inside the data directory.
    public static let logFile = "log.key"
    public static let witnessFile = "witness.key"

    /// Loads both keys from `directory`, creating the missing ones; a new log key is named `name`, a new witness key
    /// `name/witness` (`name` defaults to `harp-` and eight random hex digits; give a stable one, such as the
    /// server's host name, for keys people will read).
    public static func loadOrCreate(directory: String, name: String? = nil) throws -> ServerKeys {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let base = name ?? "harp-" + (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let log = try loadOrCreate(path: directory + "/" + logFile, type: .ed25519, name: base)
        let witness = try loadOrCreate(
            path: directory + "/" + witnessFile, type: .cosignatureV1, name: base + "/witness")
        return ServerKeys(log: log, witness: witness)
    }

    private static func loadOrCreate(path: String, type: NoteSignatureType, name: String) throws -> NoteSigningKey {
        if let existing = try read(path: path, type: type) { return existing }
        let key: NoteSigningKey
        do {
            key = try NoteSigningKey.generate(name: name, type: type)
        } catch {
            throw SignalServerError.storage("cannot make a key named '\(name)': \(error)")
        }
        let temporary = path + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw SignalServerError.storage("cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        defer { unlink(temporary) }
        let bytes = Array((key.skey + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced else {
            throw SignalServerError.storage("cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        if link(temporary, path) != 0 {
            guard errno == EEXIST, let other = try read(path: path, type: type) else {
                throw SignalServerError.storage("cannot create \(path): \(String(cString: strerror(errno)))")
            }
            return other
        }
        return key
    }

    /// The key in `path`, nil if there is no such file; refuses a file readable by others or holding another type.
    private static func read(path: String, type: NoteSignatureType) throws -> NoteSigningKey? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT { return nil }
            throw SignalServerError.storage("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw SignalServerError.storage("\(path) is readable by others: make it mode 0600 (chmod 600)")
        }
        guard status.st_size <= 4096, let data = FileManager.default.contents(atPath: path) else {
            throw SignalServerError.storage("cannot read \(path)")
        }
        let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard let key = try? NoteSigningKey(skey: line) else {
            throw SignalServerError.storage("\(path) does not hold a private key (PRIVATE+KEY+name+id+base64)")
        }
        guard key.verifierKey.type == type else {
            throw SignalServerError.storage("\(path) holds a key of another type")
        }
        return key
    }
}
