import Foundation
public import VersionLog

/// What an operator does to the version log with the server stopped (`harp-cli signal enroll`).
public enum LogAdministration {
    /// Appends an enrollment (or, with `revoke`, a revocation) of `device` for the Nextcloud user `user` to the log
    /// in `directory`, attested by its log key (made if missing); returns the leaf index. Refuses while a server
    /// runs on that directory. Meant for operators who enroll a device by hand, and for tests; devices normally
    /// enroll through a Nextcloud share (docs/proofs.md §3).
    public static func enroll(
        directory: String, user: String, device: DeviceKey, revoke: Bool = false, now: Int64
    ) async throws -> Int {
        let store = try AbuseStore(
            directory: directory, configuration: SignalServerConfiguration(dataDirectory: directory))
        let lock = try SignalServer.lockLog(directory: directory)
        defer { close(lock) }
        let keys = try ServerKeys.loadOrCreate(directory: directory)
        let log = try LogStore(pool: store.pool, key: keys.log)
        return try await log.appendEnrollment(revoke ? .revoke : .enroll, device: device, user: user, now: now)
    }
}
