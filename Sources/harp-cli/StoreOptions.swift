import ArgumentParser
import ChunkStore
import Foundation
import HarpClient

/// Where the local chunk store lives: `--store`, else `HARP_STORE`, else `$XDG_DATA_HOME/harp/store.sqlite`
/// (`~/.local/share/harp/store.sqlite`).
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("store"), help: "Path of the chunk store database (env HARP_STORE).")
    var storePath: String?

    var resolvedPath: String { resolvedPath(config: nil) }

    /// The flag, else `HARP_STORE`, else `store.path` of config.toml, else the XDG default.
    func resolvedPath(config: HarpConfig?) -> String {
        if let storePath { return storePath }
        let environment = ProcessInfo.processInfo.environment
        if let fromEnvironment = environment["HARP_STORE"], !fromEnvironment.isEmpty { return fromEnvironment }
        if let fromFile = config?.storePath, !fromFile.isEmpty { return fromFile }
        return BaseDirectories.dataHome(environment) + "/harp/store.sqlite"
    }

    func open(config: HarpConfig? = nil) throws -> ChunkStore {
        let path = resolvedPath(config: config)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return try ChunkStore(path: path)
    }
}
