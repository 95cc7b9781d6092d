import ArgumentParser
import Foundation
import HarpClient
import NextcloudClient

/// `harp-cli ls PATH [-R] [--json]`: lists a folder on the server.
struct LsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List a folder (or show a file) on the Nextcloud server.",
        discussion: """
            Text output: permission letters, size, modification time (UTC), path; folders end in /. \
            Permission letters are Nextcloud's (docs/nextcloud.md): W write, C/K create files/folders, \
            D delete, N/V rename/move, R reshare, S shared with you, M mounted, G readable.

            Examples:
              harp-cli ls /Footage
              harp-cli ls / -R --json
            """)

    @Argument(help: ArgumentHelp("Path relative to your Nextcloud root.", valueName: "path"))
    var path: String = "/"

    @Flag(name: .customShort("R"), help: "List sub-folders recursively (one PROPFIND per folder).")
    var recursive = false

    @OptionGroup var account: AccountOptions
    @OptionGroup var config: ConfigOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runReportingErrors {
            let client = try config.client(account)
            let (target, children) = try await client.list(path)
            guard target.isFolder else {
                emit(target)
                return
            }
            for child in children { emit(child) }
            guard recursive else { return }
            for folder in children where folder.isFolder {
                for try await item in client.walk(folder.path) { emit(item) }
            }
        }
    }

    private func emit(_ item: DAVItem) {
        if output.json {
            var object: [String: Any] = [
                "path": item.path, "type": item.isFolder ? "folder" : "file",
                "permissions": item.permissionLetters ?? "", "checksums": item.checksums,
            ]
            if let size = item.size { object["size"] = size }
            if let fileID = item.fileID { object["fileid"] = fileID }
            if let etag = item.etag { object["etag"] = etag }
            if let modified = item.modified { object["modified"] = modified.ISO8601Format() }
            if item.hasACLList { object["aclList"] = true }
            printJSONLine(object)
        } else {
            let letters = (item.permissionLetters ?? "-").padding(toLength: 9, withPad: " ", startingAt: 0)
            let size = (item.size.map(formatBytes) ?? "-")
            let paddedSize = String(repeating: " ", count: max(0, 10 - size.count)) + size
            let modified = item.modified.map { $0.ISO8601Format() } ?? "-"
            print("\(letters) \(paddedSize)  \(modified)  \(item.path)\(item.isFolder ? "/" : "")")
        }
    }
}
