import Foundation
internal import GRDB
import Glibc
import Logging

/// Where the bytes of a chunk can be read.
public struct ChunkLocation: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// An indexed file, valid while its size, mtime and inode match `expected`.
        case indexedFile(expected: FileGuard)
        /// A download in progress (its partial file), valid while the partial file keeps its inode.
        case partialDownload(inode: UInt64)
    }
    public var path: String
    public var offset: Int64
    public var length: Int
    public var kind: Kind
}

extension FileGuard {
    /// The guard stored in a row of the `file` table (columns `size`, `mtimeNs`, `inode` and `device`).
    init(fileRow row: Row) {
        self.init(
            size: row["size"], mtimeNanoseconds: row["mtimeNs"], inode: UInt64(bitPattern: row["inode"]),
            device: UInt64(bitPattern: row["device"]))
    }
}

extension ChunkStore {
    /// Every place the chunk's bytes can be read from: indexed files first, then verified chunks of downloads.
    public func locations(of hash: Hash256) throws(ChunkStoreError) -> [ChunkLocation] {
        let blob = Data(hash.bytes)
        return try run {
            try pool.read { db in
                var result: [ChunkLocation] = []
                // Cached statements: a seeder looks up every chunk it serves, and parsing the SQL each time was
                // a few per cent of its CPU on a loopback transfer.
                let files = try Row.fetchAll(
                    db.cachedStatement(
                        sql: """
                            SELECT file.path, file.size, file.mtimeNs, file.inode, file.device, vc.offset, vc.length
                            FROM versionChunk vc JOIN file ON file.versionId = vc.versionId
                            WHERE vc.chunkHash = ?
                            """), arguments: [blob])
                for row in files {
                    let expected = FileGuard(fileRow: row)
                    result.append(
                        ChunkLocation(
                            path: row["path"], offset: row["offset"], length: row["length"],
                            kind: .indexedFile(expected: expected)))
                }
                let partials = try Row.fetchAll(
                    db.cachedStatement(
                        sql: """
                            SELECT d.partPath, d.partInode, vc.offset, vc.length
                            FROM downloadChunk dc
                            JOIN download d ON d.id = dc.downloadId
                            JOIN versionChunk vc ON vc.versionId = d.versionId AND vc.idx = dc.idx
                            WHERE vc.chunkHash = ?
                            """), arguments: [blob])
                for row in partials {
                    result.append(
                        ChunkLocation(
                            path: row["partPath"], offset: row["offset"], length: row["length"],
                            kind: .partialDownload(inode: UInt64(bitPattern: row["partInode"]))))
                }
                return result
            }
        }
    }

    /// An indexed file that holds the version with content root `root` (the first indexed, if several do), or nil
    /// (`VersionReader` reads each chunk at its offset there).
    func indexedFile(ofVersion root: Hash256) throws(ChunkStoreError) -> VersionFile? {
        let blob = Data(root.bytes)
        return try run {
            try pool.read { db in
                guard
                    let row = try Row.fetchOne(
                        db,
                        sql: """
                            SELECT file.path, file.size, file.mtimeNs, file.inode, file.device
                            FROM version v JOIN file ON file.versionId = v.id
                            WHERE v.root = ? ORDER BY file.id LIMIT 1
                            """, arguments: [blob])
                else { return nil }
                return VersionFile(
                    path: row["path"],
                    expected: FileGuard(fileRow: row))
            }
        }
    }

    /// Reads a chunk's bytes for serving or for local dedup.
    ///
    /// Each location's guard is re-checked on the open descriptor before and after the read, so bytes of a file that
    /// changed are never returned. A location that fails its guard is skipped; if every location fails, the error is
    /// `stale` for the first of them (its file must be re-indexed), or `chunkNotFound` if there are none.
    /// With `verify`, the bytes are hashed too, and a mismatch counts as stale.
    public func readChunk(_ hash: Hash256, verify: Bool = false) throws(ChunkStoreError) -> [UInt8] {
        try firstUsableLocation(of: hash) { location throws(ChunkStoreError) in
            let bytes = try read(location)
            if verify, Hash256.sha256(bytes) != hash { throw .stale(path: location.path) }
            return bytes
        }
    }

    /// Reads a chunk's bytes into `buffer`, which must be exactly the chunk's length (a buffer the caller sends
    /// from, so that serving copies nothing more); as `readChunk(_:verify:)` without `verify`, over the locations of
    /// that length.
    public func readChunk(_ hash: Hash256, into buffer: UnsafeMutableRawBufferPointer) throws(ChunkStoreError) {
        try readChunk(hash, into: buffer, tryingFirst: nil)
    }

    /// As `readChunk(_:into:)`, trying `known` first (its guard checked as every location's is), and searching the
    /// index only when it fails. Returns the location the bytes came from.
    @discardableResult
    func readChunk(
        _ hash: Hash256, into buffer: UnsafeMutableRawBufferPointer, tryingFirst known: ChunkLocation?
    ) throws(ChunkStoreError) -> ChunkLocation {
        guard buffer.count > 0 else { throw .chunkNotFound(hash) }
        if let known, known.length == buffer.count {
            do throws(ChunkStoreError) {
                try read(known, into: buffer)
                return known
            } catch {
                logger.debug(
                    "chunk location unusable", metadata: ["file.path": "\(known.path)", "error": "\(error)"])
            }
        }
        return try firstUsableLocation(of: hash, length: buffer.count) { location throws(ChunkStoreError) in
            try read(location, into: buffer)
            return location
        }
    }

    /// Reads the bytes at one location, checking its guard before and after.
    public func read(_ location: ChunkLocation) throws(ChunkStoreError) -> [UInt8] {
        var failure: ChunkStoreError?
        let bytes = [UInt8](unsafeUninitializedCapacity: location.length) { buffer, initialized in
            do throws(ChunkStoreError) {
                try read(location, into: UnsafeMutableRawBufferPointer(buffer))
                initialized = location.length
            } catch {
                initialized = 0
                failure = error
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Reads one location into `buffer` (exactly its length), checking its guard before and after.
    private func read(_ location: ChunkLocation, into buffer: UnsafeMutableRawBufferPointer) throws(ChunkStoreError) {
        guard let base = buffer.baseAddress, buffer.count == location.length else { throw .stale(path: location.path) }
        let file = try FileDescriptor(path: location.path, flags: O_RDONLY)
        try check(file, location)
        let count = try file.read(into: base, count: location.length, at: location.offset)
        guard count == location.length else { throw .stale(path: location.path) }
        try check(file, location)
    }

    /// `body`'s result for the first location of `hash` (of `length`, if given) it does not throw for; a location
    /// that fails is logged and skipped. The error when all fail is the first one, or `chunkNotFound` if there are none.
    private func firstUsableLocation<R>(
        of hash: Hash256, length: Int? = nil, _ body: (ChunkLocation) throws(ChunkStoreError) -> R
    ) throws(ChunkStoreError) -> R {
        var firstFailure: ChunkStoreError?
        for location in try locations(of: hash) where length.map({ $0 == location.length }) ?? true {
            do throws(ChunkStoreError) {
                return try body(location)
            } catch {
                logger.debug(
                    "chunk location unusable", metadata: ["file.path": "\(location.path)", "error": "\(error)"])
                if firstFailure == nil { firstFailure = error }
            }
        }
        throw firstFailure ?? .chunkNotFound(hash)
    }

    private func check(_ file: FileDescriptor, _ location: ChunkLocation) throws(ChunkStoreError) {
        let now = try file.guardValues()
        switch location.kind {
        case .indexedFile(let expected):
            guard now == expected else { throw .stale(path: location.path) }
        case .partialDownload(let inode):
            guard now.inode == inode, now.size >= location.offset + Int64(location.length) else {
                throw .stale(path: location.path)
            }
        }
    }
}
