import ArgumentParser
import Foundation
import HarpClient
import NextcloudClient

/// `harp-cli logout`: revokes the app password on the server and forgets it.
struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "Revoke the app password on the server and delete the stored login.",
        discussion: """
            Deletes the app password on the server (DELETE /ocs/v2.php/core/apppassword), then the \
            stored credentials file. If the server already rejects the app password, the stored \
            login is deleted all the same.

            Example:
              harp-cli logout
            """)

    @OptionGroup var account: AccountOptions
    @OptionGroup var config: ConfigOptions

    func run() async throws {
        try await runReportingErrors {
            let client = try config.client(account)
            do {
                try await client.deleteAppPassword()
            } catch let error as NextcloudError where error.kind == .badCredentials {
                printError("harp-cli: the server no longer accepts this app password")
            }
            try config.store.delete()
            print("Logged out of \(client.credentials.server.absoluteString); the app password is revoked.")
        }
    }
}
