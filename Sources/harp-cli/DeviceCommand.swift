import ArgumentParser
import Foundation
import HarpClient
import VersionLog

/// `harp-cli device enroll|revoke`: this device's key in the signaling server's version log.
struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Enroll or revoke this device's key in the signaling server's version log.",
        discussion: """
            A device's versions count in a proof only while its key is enrolled for its Nextcloud user. put, get and \
            seed enroll the device by themselves the first time they append; these commands do it on purpose. Both \
            prove your account through Nextcloud: a signed challenge in /.harp/ of your home, shared read-only with \
            the signaling server's account for a moment, then unshared and deleted. See docs/proofs.md §3.

            Examples:
              harp-cli device enroll --signal wss://signal.example.com/v1/ws
              harp-cli device revoke
            """,
        subcommands: [Enroll.self, Revoke.self])

    /// `harp-cli device enroll`.
    struct Enroll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enroll", abstract: "Enroll this device's key for your Nextcloud user (again, after a revoke)."
        )
        @OptionGroup var peers: PeerOptions
        @OptionGroup var account: AccountOptions
        @OptionGroup var config: ConfigOptions

        func run() async throws { try await DeviceCommand.run(.enroll, peers, account, config) }
    }

    /// `harp-cli device revoke`.
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke",
            abstract: "Revoke this device's key: from the next leaf on, its versions no longer count.")
        @OptionGroup var peers: PeerOptions
        @OptionGroup var account: AccountOptions
        @OptionGroup var config: ConfigOptions

        func run() async throws { try await DeviceCommand.run(.revoke, peers, account, config) }
    }

    static func run(
        _ action: EnrollmentEntry.Action, _ peers: PeerOptions, _ account: AccountOptions, _ config: ConfigOptions
    ) async throws {
        try await runReportingErrors {
            let harpConfig = try config.harpConfig()
            guard let signal = try peers.settings(config: harpConfig).signalURL else {
                throw UsageError(description: "no signaling server (--signal or HARP_SIGNAL): it holds the version log")
            }
            let client = try config.client(account)
            let identity = try config.deviceIdentity()
            guard
                let enrollment = DeviceEnrollment(
                    signalURL: signal, client: client, identity: identity, logger: config.logger)
            else { throw UsageError(description: "bad signaling server URL \(signal)") }
            let done = try await enrollment.run(action)
            print(
                "\(action == .enroll ? "enrolled" : "revoked") device \(identity.fingerprint) for \(done.user)"
                    + " (leaf \(done.leafIndex))")
        }
    }
}
