import ArgumentParser
import Foundation
import HarpClient
import SignalingServer
import VersionLog

extension SignalCommand {
    /// `harp-cli signal enroll`: an operator's enrollment or revocation of a device, with the server stopped.
    struct Enroll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enroll",
            abstract: "Enroll (or revoke) a device key for a Nextcloud user in the server's version log.",
            discussion: """
                Appends an enrollment entry, attested by the server's log key, binding a device's Ed25519 key to a \
                Nextcloud user; with --revoke, ends that binding. Run it with the server stopped (it refuses while \
                one runs on --data). Prints the entry's leaf index. See docs/proofs.md.

                Examples:
                  harp-cli signal enroll --data /var/lib/harp/signal --user alice --device 3b6a27bc...
                  harp-cli signal enroll --data /var/lib/harp/signal --user alice --device 3b6a27bc... --revoke
                """
        )

        @Option(help: "Directory of the server's data (the same as signal serve --data).", completion: .directory)
        var data: String?

        @Option(help: "The Nextcloud user the device belongs to.")
        var user: String

        @Option(help: "The device's Ed25519 public key, 64 hex digits.")
        var device: String

        @Flag(help: "Revoke the device's enrollment for the user instead.")
        var revoke = false

        func validate() throws {
            guard Self.deviceKey(device) != nil else {
                throw ValidationError("--device must be 64 hex digits (an Ed25519 public key)")
            }
        }

        static func deviceKey(_ hex: String) -> DeviceKey? {
            guard hex.utf8.count == 64 else { return nil }
            var bytes: [UInt8] = []
            var index = hex.startIndex
            while index < hex.endIndex {
                let next = hex.index(index, offsetBy: 2)
                guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
                bytes.append(byte)
                index = next
            }
            return DeviceKey(bytes: bytes)
        }

        func run() async throws {
            try await runReportingErrors {
                guard let key = Self.deviceKey(device) else { throw ValidationError("bad --device") }
                let directory = data ?? BaseDirectories.dataHome(ProcessInfo.processInfo.environment) + "/harp/signal"
                let index = try await LogAdministration.enroll(
                    directory: directory, user: user, device: key, revoke: revoke,
                    now: Int64(Date().timeIntervalSince1970))
                FileHandle.standardOutput.write(Data("\(index)\n".utf8))
            }
        }
    }
}
