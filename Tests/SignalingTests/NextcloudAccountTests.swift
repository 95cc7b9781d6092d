import Foundation
import Testing

@testable import SignalingServer

/// The signaling server's own Nextcloud account: its credentials file must be private, and its app password is never
/// shown.
@Suite("Server Nextcloud account")
struct NextcloudAccountTests {
    static let server = URL(string: "https://cloud.test/")!

    func credentialsFile(mode: mode_t) throws -> String {
        let path = try temporaryDirectory() + "/nextcloud-credentials"
        try Data("# the signaling server's account\nuser harp-signal\napp_password s3cret-app-pw\n".utf8)
            .write(to: URL(fileURLWithPath: path))
        #expect(chmod(path, mode) == 0)
        return path
    }

    @Test func aPrivateFileIsReadAndItsPasswordNeverShown() throws {
        let account = try NextcloudAccount.load(file: try credentialsFile(mode: 0o600), server: Self.server)
        #expect(account.user == "harp-signal" && account.appPassword == "s3cret-app-pw")
        #expect(account.instance == "https://cloud.test")
        #expect(!"\(account)".contains("s3cret") && !String(reflecting: account).contains("s3cret"))
    }

    @Test func aFileOthersMayReadIsRefused() throws {
        for mode: mode_t in [0o640, 0o604] {
            let path = try credentialsFile(mode: mode)
            #expect(throws: SignalServerError.self) { try NextcloudAccount.load(file: path, server: Self.server) }
        }
    }
}
