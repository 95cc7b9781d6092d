import ArgumentParser
import Foundation
import HarpClient
import VersionLog

/// `harp-cli verify-proof BUNDLE --policy FILE [--json]`: checks a proof bundle offline.
struct VerifyProofCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-proof",
        abstract: "Check a file's version-history proof offline against a witness policy.",
        discussion: """
            Checks every link of the chain, every author signature and enrollment, the inclusion of every entry in \
            the checkpoint, the log's signature, a quorum of distinct witness keys of the policy and the \
            cosignature times; needs no network. Prints the history (version, operation, author user and device, \
            size, time) and the witnessed time bounds. No offline proof can show that no newer version exists: the \
            output says so. Exit 0 valid, 6 invalid (with the reason), 2 for a malformed bundle or policy.

            The policy file has the lines `log VKEY`, `witness NAME VKEY` (repeatable) and `quorum K`; `#` starts \
            a comment. See docs/proofs.md.

            Examples:
              harp-cli verify-proof report.pdf.proof.json --policy acme.policy
              harp-cli verify-proof bundle.json --policy acme.policy --max-age 86400 --json
            """
    )

    @Argument(help: ArgumentHelp("The proof bundle (JSON) written by `harp-cli proof`.", valueName: "bundle"))
    var bundle: String

    @Option(help: "The witness policy file: log key, witness keys and quorum.", completion: .file())
    var policy: String

    @Option(help: "Refuse a checkpoint whose quorum of cosignatures is older than this many seconds.")
    var maxAge: Int64?

    @Option(help: "Allowed difference between clocks (the author's, the witnesses', this one), seconds.")
    var clockSkew: Int64 = ProofVerifier.defaultClockSkew

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func validate() throws {
        if let maxAge, maxAge < 0 { throw ValidationError("--max-age must not be negative") }
        if clockSkew < 0 { throw ValidationError("--clock-skew must not be negative") }
    }

    func run() async throws {
        let policy: WitnessPolicy
        let proof: ProofBundle
        do {
            policy = try WitnessPolicy(parsing: try Self.read(self.policy, limit: WitnessPolicy.maximumSize))
            proof = try ProofBundle(json: Array(try Self.read(bundle, limit: ProofBundle.Limits().maximumBytes).utf8))
        } catch {
            fail(code: .usage, reason: "\(error)", kind: "malformed")
        }
        let verifier = ProofVerifier(
            policy: policy, now: Int64(Date().timeIntervalSince1970), clockSkew: clockSkew, maxAge: maxAge)
        do {
            let history = try verifier.verify(proof)
            json ? printJSON(history) : printText(history)
        } catch {
            fail(code: .verificationFailure, reason: "\(error)", kind: "invalid")
        }
    }

    /// Reads a file of at most `limit` bytes.
    static func read(_ path: String, limit: Int) throws -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let size = attributes?[.size] as? Int, let data = FileManager.default.contents(atPath: path) else {
            throw UsageError(description: "cannot read \(path)")
        }
        guard size <= limit, data.count <= limit else {
            throw UsageError(description: "\(path) is over \(limit) bytes")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private func fail(code: HarpExitCode, reason: String, kind: String) -> Never {
        if json {
            printJSONLine(["valid": false, "error": kind, "reason": reason])
        } else {
            printError("harp-cli verify-proof: \(kind == "invalid" ? "INVALID" : "malformed input"): \(reason)")
        }
        Foundation.exit(code.rawValue)
    }

    private static func date(_ seconds: some BinaryInteger) -> String {
        Date(timeIntervalSince1970: TimeInterval(Int64(clamping: seconds))).ISO8601Format()
    }

    private func printText(_ history: VerifiedHistory) {
        var lines = [
            "VALID: the history of lineage \(history.lineage) in log \(history.origin) (checkpoint size "
                + "\(history.checkpointSize)), cosigned by \(history.witnesses.joined(separator: ", "))",
            "version  operation  author                                                                  size  time",
        ]
        for version in history.versions {
            lines.append(
                "\(version.number)  \(version.operation.name)  \(version.authorUser) (device \(version.authorDevice))  "
                    + "\(version.size)  \(Self.date(version.time))")
        }
        let head = history.headWitnessed
        let current = history.checkpointWitnessed
        lines.append(
            "the head was witnessed by \(Self.date(head.quorumReached)) (quorum reached; earliest "
                + "\(Self.date(head.earliest)), latest \(Self.date(head.latest)))")
        lines.append(
            "the history is the log's as of \(Self.date(current.quorumReached)) (quorum reached; earliest "
                + "\(Self.date(current.earliest)), latest \(Self.date(current.latest)))")
        lines.append(VerifiedHistory.limitation)
        print(lines.joined(separator: "\n"))
    }

    private func printJSON(_ history: VerifiedHistory) {
        func times(_ times: VerifiedHistory.WitnessedTimes) -> [String: Any] {
            ["earliest": times.earliest, "latest": times.latest, "quorumReached": times.quorumReached]
        }
        let versions: [[String: Any]] = history.versions.map { version in
            [
                "version": version.number, "operation": version.operation.name, "authorUser": version.authorUser,
                "authorDevice": version.authorDevice.description, "size": version.size, "time": version.time,
                "leafIndex": version.leafIndex, "chainHash": version.chainHash,
            ]
        }
        printJSONLine([
            "valid": true, "lineage": history.lineage, "origin": history.origin,
            "checkpointSize": history.checkpointSize, "versions": versions, "witnesses": history.witnesses,
            "headWitnessed": times(history.headWitnessed), "checkpointWitnessed": times(history.checkpointWitnessed),
            "limitation": VerifiedHistory.limitation,
        ])
    }
}
