import ArgumentParser
import Foundation
import HarpClient
import SignalingServer

extension SignalCommand {
    /// `harp-cli signal keys`: makes (or reads) the server's version-log keys and prints their verifier keys.
    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keys",
            abstract: "Create the server's log and witness keys if missing and print their verifier keys.",
            discussion: """
                The log key signs the server's version-log checkpoints; the witness key cosigns the checkpoints of \
                the other servers of its federation. Both live in --data (log.key and witness.key, mode 0600) and are \
                made on the first run; later runs print the same keys. The output is two lines, `log VKEY` and \
                `witness VKEY` (C2SP verifier keys, name+id+base64), to paste into federation and policy files before \
                the servers start. See docs/proofs.md.

                Examples:
                  harp-cli signal keys --data /var/lib/harp/signal
                  harp-cli signal keys --data /var/lib/harp/signal --name signal.acme.example
                """
        )

        @Option(help: "Directory of the server's data (the same as signal serve --data).", completion: .directory)
        var data: String?

        @Option(help: "Name of new keys (the log's origin), e.g. the server's host name; default harp-<random>.")
        var name: String?

        func run() async throws {
            try await runReportingErrors {
                let directory = data ?? BaseDirectories.dataHome(ProcessInfo.processInfo.environment) + "/harp/signal"
                let keys = try ServerKeys.loadOrCreate(directory: directory, name: name)
                let lines = "log \(keys.log.verifierKey.vkey)\nwitness \(keys.witness.verifierKey.vkey)\n"
                FileHandle.standardOutput.write(Data(lines.utf8))
            }
        }
    }
}
