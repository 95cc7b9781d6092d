import ArgumentParser
import ChunkStore
import Foundation

/// Where the local chunk store lives: `--store`, else `HARP_STORE`, else `$XDG_DATA_HOME/harp/store.sqlite`
/// (`~/.local/share/harp/store.sqlite`).
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("store"), help: "Path of the chunk store database (env HARP_STORE).")
    var storePath: String?

    var resolvedPath: String {
        if let storePath { return storePath }
        let environment = ProcessInfo.processInfo.environment
        if let fromEnvironment = environment["HARP_STORE"], !fromEnvironment.isEmpty { return fromEnvironment }
        let dataHome =
            environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (FileManager.default.homeDirectoryForCurrentUser.path + "/.local/share")
        return dataHome + "/harp/store.sqlite"
    }

    func open() throws -> ChunkStore {
        let path = resolvedPath
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return try ChunkStore(path: path)
    }
}
