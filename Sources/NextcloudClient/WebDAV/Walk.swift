/// Bounds of a recursive walk: a hostile server can answer every folder with more folders, so a walk stops at a depth
/// and a number of entries that real trees stay under.
public struct WalkLimits: Sendable, Hashable {
    /// Entries nested deeper than this below the walked folder are refused (`.tooDeep`) and not listed.
    public var maximumDepth: Int
    /// Entries (items and refusals) a walk hands out before it ends with an error.
    public var maximumEntries: Int

    /// Defaults: 64 levels, 500,000 entries (a few hundred MiB of listings at most).
    public init(maximumDepth: Int = 64, maximumEntries: Int = 500_000) {
        self.maximumDepth = max(1, maximumDepth)
        self.maximumEntries = max(1, maximumEntries)
    }
}

/// A listing entry harp will not use, and why; nothing is fetched or written for it.
public struct RefusedEntry: Sendable, Hashable {
    /// The href as the server sent it (at most 200 characters, control characters escaped), or the path of a
    /// duplicate or too deep entry.
    public var name: String
    /// The folder whose listing named it.
    public var folder: String
    /// Why it was refused.
    public var reason: HrefRefusal

    /// A `.malformedResponse` error that names the entry, for reporting it.
    public var error: NextcloudError {
        NextcloudError(
            .malformedResponse, path: folder,
            detail: "refused the entry \"\(name)\": \(reason); nothing was fetched for it")
    }
}

/// One entry of a recursive walk.
public enum WalkEntry: Sendable, Hashable {
    /// A file or folder below the walked folder, with a path made only of checked names.
    case item(DAVItem)
    /// An entry of a listing harp refused.
    case refused(RefusedEntry)
}

extension NextcloudClient {
    /// A folder's Depth 1 listing, checked.
    public struct Listing: Sendable, Hashable {
        /// The folder itself.
        public var folder: DAVItem
        /// Its direct children, each once, in the server's order.
        public var children: [DAVItem]
        /// What the server listed that is not a direct child with a usable name (an href outside the folder, a name
        /// that is `.`, `..`, empty or holds `/`, a second copy of an entry).
        public var refused: [RefusedEntry]
    }

    /// The folder at `path` and its direct children (PROPFIND Depth 1), with every entry that does not lie directly
    /// in the folder, or lists a path twice, set apart as refused.
    public func listEntries(_ path: String) async throws -> Listing {
        let normalized = PathEncoding.normalize(path)
        let folderNames = normalized.split(separator: "/")
        var folder: DAVItem?
        var children: [DAVItem] = []
        var refused: [RefusedEntry] = []
        var seen = Set<String>()
        for entry in try await propfindEntries(normalized, depth: .one) {
            switch entry {
            case .refused(let href, let reason):
                refused.append(RefusedEntry(name: href, folder: normalized, reason: reason))
            case .item(let item) where item.path == normalized:
                if folder == nil {
                    folder = item
                } else {
                    refused.append(RefusedEntry(name: item.path, folder: normalized, reason: .duplicate))
                }
            case .item(let item):
                let names = item.path.split(separator: "/")
                guard names.count == folderNames.count + 1, zip(names, folderNames).allSatisfy({ $0 == $1 }) else {
                    refused.append(RefusedEntry(name: item.path, folder: normalized, reason: .notInFolder))
                    continue
                }
                guard seen.insert(item.path).inserted else {
                    refused.append(RefusedEntry(name: item.path, folder: normalized, reason: .duplicate))
                    continue
                }
                children.append(item)
            }
        }
        guard let folder else {
            throw NextcloudError(.malformedResponse, path: normalized, detail: "the answer does not describe the path")
        }
        return Listing(folder: folder, children: children, refused: refused)
    }

    /// Every entry below `path`, depth first, streamed as each folder is listed (one Depth 1 PROPFIND per folder,
    /// never Depth infinity, which is slow on large trees). Refused entries are handed out as `.refused` and the walk
    /// goes on; it ends with an error when a request fails or more than `limits.maximumEntries` entries were listed.
    public func walkEntries(
        _ path: String, limits: WalkLimits = WalkLimits()
    ) -> AsyncThrowingStream<
        WalkEntry, any Error
    > {
        let state = WalkState(client: self, root: PathEncoding.normalize(path), limits: limits)
        return AsyncThrowingStream(unfolding: { try await state.next() })
    }

    /// The same walk, starting from `listing`, the walked folder's own Depth 1 listing already in hand (`get -R` lists
    /// its argument once to learn whether it is a folder): that folder is not listed again.
    public func walkEntries(
        from listing: Listing, limits: WalkLimits = WalkLimits()
    ) -> AsyncThrowingStream<WalkEntry, any Error> {
        let state = WalkState(client: self, root: listing.folder.path, limits: limits, firstListing: listing)
        return AsyncThrowingStream(unfolding: { try await state.next() })
    }
}

/// The queue of a recursive walk: entries listed but not yet handed out, folders not yet listed.
///
/// Pull-driven: a folder is listed only when the consumer has taken every entry before it, so memory stays at one
/// listing plus the folders still to list, and both are bounded by `limits.maximumEntries`. Every child lies one
/// level below its folder (`listEntries`), so paths only grow and a listing that names its own folder, or a cycle,
/// cannot make the walk go round.
actor WalkState {
    private let client: NextcloudClient
    private let root: String
    private let rootDepth: Int
    private let limits: WalkLimits
    private var buffered: [WalkEntry] = []
    private var pendingFolders: [String]
    private var listed = 0

    /// A walk of `root`; with `firstListing` (the Depth 1 listing of `root`) the root is not listed again.
    init(
        client: NextcloudClient, root: String, limits: WalkLimits, firstListing: NextcloudClient.Listing? = nil
    ) {
        self.client = client
        self.root = root
        self.rootDepth = root.split(separator: "/").count
        self.limits = limits
        self.pendingFolders = firstListing == nil ? [root] : []
        self.firstListing = firstListing
    }

    private var firstListing: NextcloudClient.Listing?

    func next() async throws -> WalkEntry? {
        while buffered.isEmpty {
            let folder: String
            let listing: NextcloudClient.Listing
            if let first = firstListing {
                firstListing = nil
                folder = root
                listing = first
            } else {
                guard let next = pendingFolders.popLast() else { return nil }
                try Task.checkCancellation()
                folder = next
                listing = try await client.listEntries(folder)
            }
            listed += listing.children.count + listing.refused.count
            guard listed <= limits.maximumEntries else {
                throw NextcloudError(
                    .malformedResponse, path: root,
                    detail: "more than \(limits.maximumEntries) entries below the folder; harp stops walking there")
            }
            var entries: [WalkEntry] = []
            var folders: [String] = []
            for child in listing.children {
                let depth = child.path.split(separator: "/").count - rootDepth
                guard depth <= limits.maximumDepth else {
                    entries.append(.refused(RefusedEntry(name: child.path, folder: folder, reason: .tooDeep(depth))))
                    continue
                }
                entries.append(.item(child))
                if child.isFolder { folders.append(child.path) }
            }
            entries += listing.refused.map(WalkEntry.refused)
            buffered = entries.reversed()
            pendingFolders += folders.reversed()
        }
        return buffered.popLast()
    }
}
