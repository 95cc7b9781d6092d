internal import Foundation
public import Logging
public import NextcloudClient
public import SwarmKit

/// One file `get` fetches: finished on the server, or still uploading (found by its pending sidecar); both take the
/// same path through `FileFetcher`, and both get their local path from `OutputFolder`.
public struct FetchJob: Sendable {
    /// Where the file's bytes can come from.
    public enum Source: Sendable {
        /// A file the server has (its PROPFIND answer).
        case finished(DAVItem)
        /// A file whose upload is still running: its pending sidecar (peers only).
        case uploading(path: String, sidecar: Sidecar)
    }

    public var source: Source
    /// The local path.
    public var destination: String
    /// For a file found by walking a folder: the output folder it must stay in (its folders are created at fetch time
    /// without following symbolic links).
    public var folder: OutputFolder?

    public init(source: Source, destination: String, folder: OutputFolder? = nil) {
        self.source = source
        self.destination = destination
        self.folder = folder
    }

    /// The remote path of the file.
    public var remotePath: String {
        switch source {
        case .finished(let item): item.path
        case .uploading(let path, _): path
        }
    }

    /// The size the server (or the pending sidecar) gives.
    public var size: Int64 {
        switch source {
        case .finished(let item): item.size ?? 0
        case .uploading(_, let sidecar): sidecar.size
        }
    }
}

/// The files a `get` of `paths` fetches, resolved before anything is joined: access problems end here.
public struct FetchJobs {
    public var jobs: [FetchJob] = []
    /// Listing entries that are not fetched, with why.
    public var refused: [(path: String, error: any Error)] = []
    /// The folders walked (with -R), by their server path: each may have a bundle of its small files.
    public var folders: [String] = []

    /// Resolves `paths` (files, or folders with `recursive`) to jobs. A path the server does not show is looked for
    /// as an upload in progress when `findUploads` (a signaling server is configured): its pending sidecar is
    /// readable by whoever may read the folder.
    public static func resolve(
        _ paths: [String], output: String?, recursive: Bool, findUploads: Bool, client: NextcloudClient,
        logger: Logger
    ) async throws -> FetchJobs {
        var result = FetchJobs()
        for path in paths {
            let item: DAVItem
            // With -R the argument is listed at Depth 1 at once: a folder's listing is the walk's first step (it is
            // not listed again), a file's is the file alone. Without -R, Depth 0 is all that is needed.
            var listing: NextcloudClient.Listing?
            do {
                if recursive {
                    let listed = try await client.listEntries(path)
                    item = listed.folder
                    listing = listed
                } else {
                    item = try await client.item(at: path)
                }
            } catch let error as NextcloudError where error.kind == .notFoundOrNoAccess && findUploads {
                guard let sidecar = await SidecarFolder(client: client, logger: logger).readPending(forFileAt: path)
                else { throw error }
                let destination = try OutputFolder.destination(ofFile: path, output: output, count: paths.count)
                result.jobs.append(FetchJob(source: .uploading(path: path, sidecar: sidecar), destination: destination))
                continue
            }
            guard item.isFolder else {
                let destination = try OutputFolder.destination(ofFile: item.path, output: output, count: paths.count)
                result.jobs.append(FetchJob(source: .finished(item), destination: destination))
                continue
            }
            guard recursive else { throw UsageError(description: "\(path) is a folder; use -R") }
            let folder = try OutputFolder.forFolder(item.path, output: output)
            result.folders.append(item.path)
            let walk = listing.map { client.walkEntries(from: $0) } ?? client.walkEntries(item.path)
            for try await entry in walk {
                switch entry {
                case .refused(let entry): result.refused.append((entry.name, entry.error))
                case .item(let child) where !child.isFolder:
                    if OutputFolder.isInSidecarFolder(child.path, below: item.path, sidecarFolder: Sidecar.folderName) {
                        continue
                    }
                    do {
                        let destination = try folder.destination(of: child.path, below: item.path)
                        result.jobs.append(FetchJob(source: .finished(child), destination: destination, folder: folder))
                    } catch {
                        result.refused.append((child.path, error))
                    }
                case .item: continue
                }
            }
        }
        return result
    }
}
