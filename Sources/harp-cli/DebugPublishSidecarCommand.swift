import ArgumentParser
import ChunkStore
import Foundation
import HarpClient
import NextcloudClient
import SwarmKit

/// `harp-cli debug-publish-sidecar LOCAL REMOTE`: publishes a sidecar and manifest for REMOTE that describe LOCAL's
/// bytes, whatever the server holds.
///
/// Test support, hidden from help: this is what a sidecar writer who lies does (anyone who may create files in the
/// folder can write `.harp/` files with any content), so the end-to-end tests can check that fetchers notice. It
/// grants nothing a writer does not already have. Prints the sidecar's swarm id.
struct DebugPublishSidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug-publish-sidecar",
        abstract: "Publish a sidecar naming a local file's bytes for a remote file (test support).",
        shouldDisplay: false
    )

    @Argument(help: "The local file whose content root the sidecar names.") var local: String
    @Argument(help: "The remote file the sidecar is published for.") var remote: String
    @OptionGroup var account: AccountOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var config: ConfigOptions

    func run() async throws {
        try await runReportingErrors {
            let client = try config.client(account)
            let identity = try config.deviceIdentity()
            let store = try storeOptions.open(config: try config.harpConfig())
            let outcome = try store.index(file: local)
            guard let manifest = try store.manifest(root: outcome.root),
                let version = try await client.item(at: remote).remoteVersion
            else { throw FetchError.local("no manifest for \(local), or no fileid and etag for \(remote)") }
            let sidecar = try await SidecarPublisher(client: client, identity: identity, logger: config.logger).publish(
                .version(version), root: outcome.root, chunking: outcome.parameters, salt: Sidecar.randomSalt(),
                manifest: manifest, nextTo: remote)
            print("published \(sidecar.swarmKeys.swarmID.hexString)")
        }
    }
}
