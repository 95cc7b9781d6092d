import ArgumentParser

/// The `harp-cli` command tree.
@main
struct HarpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harp-cli",
        abstract: "A peer-to-peer file swarm client for Nextcloud.",
        subcommands: [IndexCommand.self, SignalCommand.self]
    )
}
