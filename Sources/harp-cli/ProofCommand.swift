import ArgumentParser
import Foundation
import HarpClient
import HarpHTTP
import NextcloudClient
import VersionLog

/// `harp-cli proof PATH [-o BUNDLE]`: fetches the proof of a file's version history from the signaling server.
struct ProofCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proof",
        abstract: "Fetch the proof of a file's version history (check it with verify-proof).",
        discussion: """
            Checks with the Nextcloud server that you may read the file (a user who may not gets the same refusal \
            as from get), computes its lineage from the instance and the file's id (which survives renames), and \
            fetches from the signaling server the chain of its versions with inclusion proofs, the enrollments of \
            their authors, the newest cosigned checkpoint and the consistency proof from the checkpoint that first \
            held the head. Writes the bundle (JSON) to -o, or to standard output. See docs/proofs.md.

            Examples:
              harp-cli proof /Footage/cut-v3.mov -o cut-v3.proof.json
              harp-cli proof /Reports/q3.pdf --signal ws://127.0.0.1:7447/v1/ws > q3.proof.json
            """
    )

    @Argument(help: ArgumentHelp("Path of the file, relative to your Nextcloud root.", valueName: "path"))
    var path: String

    @Option(name: .shortAndLong, help: "Write the bundle to this file instead of standard output.")
    var output: String?

    @OptionGroup var peers: PeerOptions
    @OptionGroup var account: AccountOptions
    @OptionGroup var config: ConfigOptions

    /// The largest bundle read from the server (the bundle decoder's own limit).
    static let maximumBundle = ProofBundle.Limits().maximumBytes

    func run() async throws {
        try await runReportingErrors {
            let harpConfig = try config.harpConfig()
            let client = try config.client(account)
            // The same access check as `get`: a user without read access ends here with get's refusal.
            let item = try await client.item(at: path)
            guard !item.isFolder else { throw UsageError(description: "\(path) is a folder; a proof is of a file") }
            guard let fileID = item.fileID else {
                throw UsageError(description: "the server gave no file id for \(path): no lineage")
            }
            guard let signal = try peers.settings(config: harpConfig).signalURL, let base = Self.httpBase(signal)
            else {
                throw UsageError(description: "no signaling server (--signal or HARP_SIGNAL): it holds the version log")
            }
            let lineage = VersionEntry.lineage(instance: Self.instance(client.credentials.server), fileID: "\(fileID)")
            let bundle = try await Self.fetch(base + "/v1/log/proof?lineage=\(lineage.hex)")
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: Data(bundle.json())) else {
                    throw UsageError(description: "cannot write \(output)")
                }
            } else {
                FileHandle.standardOutput.write(Data(bundle.json()))
                FileHandle.standardOutput.write(Data("\n".utf8))
            }
        }
    }

    /// The instance as lineages name it: the server URL without a trailing slash.
    static func instance(_ server: URL) -> String {
        var text = server.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// `ws://host:port/v1/ws` as `http://host:port` (and `wss` as `https`).
    static func httpBase(_ signal: String) -> String? {
        guard var components = URLComponents(string: signal) else { return nil }
        switch components.scheme {
        case "ws": components.scheme = "http"
        case "wss": components.scheme = "https"
        default: return nil
        }
        components.path = ""
        components.query = nil
        return components.string
    }

    /// Fetches and decodes a bundle. The answer is read up to `maximumBundle` bytes and 60 s in all: a server that
    /// sends more, or never ends, has its connection closed at the bound.
    static func fetch(_ url: String) async throws -> ProofBundle {
        let client = BoundedHTTPClient(limits: .init(maximumBody: maximumBundle, deadline: .seconds(60)))
        let answer: BoundedHTTPClient.Response
        do {
            answer = try await client.send("GET", url)
        } catch BoundedHTTPError.badURL {
            throw UsageError(description: "bad signaling server URL")
        } catch BoundedHTTPError.bodyTooLarge(let limit) {
            throw ProofFetchError.malformed("over \(limit) bytes")
        } catch {
            throw ProofFetchError.unreachable("\(error)")
        }
        guard answer.status == 200 else {
            throw ProofFetchError.refused(
                status: answer.status, String(decoding: answer.body.prefix(200), as: UTF8.self))
        }
        do {
            return try ProofBundle(json: answer.body)
        } catch {
            throw ProofFetchError.malformed("\(error)")
        }
    }
}

/// Why `proof` got no bundle from the signaling server.
enum ProofFetchError: Error, CustomStringConvertible {
    case unreachable(String)
    case refused(status: Int, String)
    case malformed(String)

    var description: String {
        switch self {
        case .unreachable(let detail): "the signaling server could not be reached: \(detail)"
        case .refused(404, _): "the version log holds no published version of this file yet"
        case .refused(let status, let body): "the signaling server answered \(status): \(body)"
        case .malformed(let detail): "the signaling server's bundle is malformed: \(detail)"
        }
    }
}
