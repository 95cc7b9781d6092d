import ArgumentParser
import Foundation
import HarpClient
import NextcloudClient
import SwarmKit

/// `harp-cli whoami`: who the stored (or given) credentials belong to.
struct WhoamiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami",
        abstract: "Show this device's key fingerprint and the server, user, display name and quota of the login.",
        discussion: """
            The device key (Ed25519) is created on first use as device.key in the configuration folder, mode 0600; \
            peers know this installation by it.

            Examples:
              harp-cli whoami
              HARP_SERVER=https://cloud.example.com HARP_USER=alice HARP_APP_PASSWORD=… harp-cli whoami --json
            """)

    @OptionGroup var account: AccountOptions
    @OptionGroup var config: ConfigOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runReportingErrors {
            let keyPath = config.store.directory.appendingPathComponent("device.key").path
            let device = try DeviceIdentity.loadOrCreate(at: keyPath)
            if !output.json { print("device:       \(device.fingerprint)") }
            let client = try config.client(account)
            let user = try await client.currentUser()
            let server = client.credentials.server.absoluteString
            let used = user.quota?.used?.integer
            let total = user.quota?.isUnlimited == false ? user.quota?.total?.integer : nil
            if output.json {
                var object: [String: Any] = [
                    "device": device.fingerprint, "server": server, "user": user.id,
                    "displayName": user.displayname ?? "",
                ]
                if let used { object["quotaUsed"] = used }
                object["quotaTotal"] = total ?? NSNull()
                printJSONLine(object)
            } else {
                print("server:       \(server)")
                print("user:         \(user.id)")
                print("display name: \(user.displayname ?? "")")
                let usedText = used.map(formatBytes) ?? "?"
                print("quota:        \(usedText) used of \(total.map(formatBytes) ?? "unlimited")")
            }
        }
    }
}

/// 1536 → "1.5 KiB".
func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = Double(bytes)
    var unit = 0
    while abs(value) >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}
