import ArgumentParser
import Foundation
import HarpClient

#if canImport(Glibc)
    import Glibc
#endif

/// The `harp-cli` command tree.
@main
struct HarpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harp-cli",
        abstract: "A peer-to-peer file swarm client for Nextcloud.",
        version: "0.1.0",
        subcommands: [
            LoginCommand.self, LogoutCommand.self, WhoamiCommand.self, LsCommand.self, IndexCommand.self,
            GetCommand.self, PutCommand.self, SeedCommand.self, StatusCommand.self, DemoCommand.self,
            SignalCommand.self, VerifyProofCommand.self, ProofCommand.self, DeviceCommand.self,
            DevCloudCommand.self,
            DebugDownloadCommand.self, DebugPublishSidecarCommand.self, DebugCommand.self,
        ]
    )

    /// Parses and runs a command; a usage error the argument parser finds exits with 2 (as documented), not with
    /// the parser's own 64.
    static func main() async {
        // One line at a time even into a pipe or file, so scripts and tests see progress as it happens.
        lineBufferStandardOutput()
        raiseOpenFileLimit()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Foundation.exit(0)
            }
            if !message.isEmpty { printError(message) }
            Foundation.exit(code == .validationFailure ? HarpExitCode.usage.rawValue : code.rawValue)
        }
    }
}

/// Raises the soft open-file limit to the hard limit: each peer, each relay and each spray punch's flow is one socket
/// (the signaling server holds one per client; a spray punch up to a few hundred for a few seconds, docs/nat.md).
private func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// Makes standard output line-buffered, so that pipes and log files see each line as it is printed. Swift 6 refuses
/// a reference to the C global `stdout` (shared mutable state), so its value is read once through `dlsym`, here at
/// start-up before any other task runs, and handed to Glibc's `setvbuf`.
private func lineBufferStandardOutput() {
    // RTLD_DEFAULT is the null handle on glibc: search the global symbol table.
    guard let symbol = dlsym(nil, "stdout") else { return }
    guard let file = symbol.assumingMemoryBound(to: UnsafeMutablePointer<FILE>?.self).pointee else { return }
    setvbuf(file, nil, _IOLBF, 0)
}
