internal import Crypto
internal import Foundation
internal import HarpBasics
public import Logging
public import NextcloudClient
public import SwarmKit
public import VersionLog

/// Enrolls (or revokes) this device's key with the signaling server's version log through Nextcloud
/// (docs/proofs.md §3), without the server ever holding the user's password:
///
/// 1. ask the server for a challenge (a nonce, its Nextcloud account, its instance, its log's origin);
/// 2. write an `EnrollmentRequest` signed by the device key to `/.harp/enroll-<nonce>.json` in the user's home;
/// 3. share that file read-only with the server's account (OCS, share type 0);
/// 4. ask the server to enroll: it reads the share as its own account and takes the user from the share's owner;
/// 5. delete the share and the file (whatever happened).
public struct DeviceEnrollment: Sendable {
    let http: LogHTTP
    let client: NextcloudClient
    let identity: DeviceIdentity
    let logger: Logger

    /// Nil when `signalURL` is not a ws://, wss://, http:// or https:// URL.
    public init?(signalURL: String, client: NextcloudClient, identity: DeviceIdentity, logger: Logger) {
        guard let http = LogHTTP(signalURL: signalURL) else { return nil }
        self.http = http
        self.client = client
        self.identity = identity
        self.logger = logger
    }

    /// What the server appended.
    public struct Enrolled: Sendable {
        public var leafIndex: Int
        public var user: String
    }

    /// Runs the exchange for `action`; throws with a reason a person can act on.
    public func run(_ action: EnrollmentEntry.Action) async throws -> Enrolled {
        let challenge = try await http.request("POST", "/v1/log/enroll/challenge")
        guard challenge.status == 200, let object = challenge.json, let nonceHex = object["nonce"] as? String,
            let nonce = Hex.decode(nonceHex), let account = object["account"] as? String,
            let instance = object["instance"] as? String, let origin = object["origin"] as? String
        else {
            if challenge.status == 404 {
                throw VersionLogError("the signaling server has no Nextcloud account: its operator enrolls devices")
            }
            throw VersionLogError("no enrollment challenge (\(challenge.status)): \(challenge.text)")
        }
        let ownInstance = VersionRecorder.instance(client.credentials.server)
        guard instance == ownInstance else {
            throw VersionLogError("the signaling server enrolls users of \(instance), not of \(ownInstance)")
        }
        let request = try EnrollmentRequest.signed(
            action, nonce: nonce, user: client.credentials.userID, instance: instance, origin: origin,
            time: Int64(Date().timeIntervalSince1970), key: try identity.signingKey())
        let path = "/.harp/enroll-" + Hex.encode(nonce.prefix(8)) + ".json"
        _ = try? await client.makeFolder("/.harp")
        _ = try await client.upload(request.json, to: path)
        var shareID: String?
        let outcome: Result<Enrolled, any Error>
        do {
            let share = try await client.createUserShare(of: path, with: account, permissions: .read)
            shareID = share.id
            let answer = try await http.request("POST", "/v1/log/enroll", body: Data(share.id.utf8))
            guard answer.status == 200, let result = answer.json,
                let leaf = (result["leafIndex"] as? NSNumber)?.intValue
            else {
                throw VersionLogError("the signaling server refused the enrollment (\(answer.status)): \(answer.text)")
            }
            outcome = .success(Enrolled(leafIndex: leaf, user: result["user"] as? String ?? ""))
        } catch {
            outcome = .failure(error)
        }
        // The share and the file go whatever happened; a failure to remove them is logged, not thrown.
        if let shareID {
            do { try await client.deleteShare(id: shareID) } catch {
                logger.warning("could not remove the enrollment share", metadata: ["error": "\(error)"])
            }
        }
        do { try await client.delete(path) } catch {
            logger.warning("could not remove the enrollment file", metadata: ["error": "\(error)"])
        }
        return try outcome.get()
    }
}

/// A version-log operation that did not happen, with the reason.
public struct VersionLogError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
