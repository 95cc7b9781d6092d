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

extension ChunkStore {
    /// Every place the chunk's bytes can be read from: indexed files first, then verified chunks of downloads.
    public func locations(of hash: Hash256) throws(ChunkStoreError) -> [ChunkLocation] {
        let blob = Data(hash.bytes)
        return try run {
            try pool.read { db in
                var result: [ChunkLocation] = []
                let files = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT file.path, file.size, file.mtimeNs, file.inode, file.device, vc.offset, vc.length
                        FROM versionChunk vc JOIN file ON file.versionId = vc.versionId
                        WHERE vc.chunkHash = ?
                        """, arguments: [blob])
                for row in files {
                    let expected = FileGuard(
                        size: row["size"], mtimeNanoseconds: row["mtimeNs"],
                        inode: UInt64(bitPattern: row["inode"]), device: UInt64(bitPattern: row["device"]))
                    result.append(
                        ChunkLocation(
                            path: row["path"], offset: row["offset"], length: row["length"],
                            kind: .indexedFile(expected: expected)))
                }
                let partials = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT d.partPath, d.partInode, vc.offset, vc.length
                        FROM downloadChunk dc
                        JOIN download d ON d.id = dc.downloadId
                        JOIN versionChunk vc ON vc.versionId = d.versionId AND vc.idx = dc.idx
                        WHERE vc.chunkHash = ?
                        """, arguments: [blob])
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

    /// Reads a chunk's bytes for serving or for local dedup.
    ///
    /// Each location's guard is re-checked on the open descriptor before and after the read, so bytes of a file that
    /// changed are never returned. A location that fails its guard is skipped; if every location fails, the error is
    /// `stale` for the first of them (its file must be re-indexed), or `chunkNotFound` if there are none.
    /// With `verify`, the bytes are hashed too, and a mismatch counts as stale.
    public func readChunk(_ hash: Hash256, verify: Bool = false) throws(ChunkStoreError) -> [UInt8] {
        var firstFailure: ChunkStoreError?
        for location in try locations(of: hash) {
            do throws(ChunkStoreError) {
                let bytes = try read(location)
                if verify, Hash256.sha256(bytes) != hash { throw .stale(path: location.path) }
                return bytes
            } catch {
                logger.debug(
                    "chunk location unusable", metadata: ["file.path": "\(location.path)", "error": "\(error)"])
                if firstFailure == nil { firstFailure = error }
            }
        }
        throw firstFailure ?? .chunkNotFound(hash)
    }

    /// Reads a chunk's bytes into `buffer`, which must be exactly the chunk's length (a buffer the caller sends
    /// from, so that serving copies nothing more); as `readChunk(_:verify:)` without `verify`. Throws `stale` when no
    /// location of that length holds the chunk's bytes unchanged.
    public func readChunk(_ hash: Hash256, into buffer: UnsafeMutableRawBufferPointer) throws(ChunkStoreError) {
        guard buffer.count > 0 else { throw .chunkNotFound(hash) }
        var firstFailure: ChunkStoreError?
        for location in try locations(of: hash) where location.length == buffer.count {
            do throws(ChunkStoreError) {
                let file = try FileDescriptor(path: location.path, flags: O_RDONLY)
                try check(file, location)
                let count = try file.read(into: buffer.baseAddress!, count: buffer.count, at: location.offset)
                guard count == location.length else { throw .stale(path: location.path) }
                try check(file, location)
                return
            } catch {
                logger.debug(
                    "chunk location unusable", metadata: ["file.path": "\(location.path)", "error": "\(error)"])
                if firstFailure == nil { firstFailure = error }
            }
        }
        throw firstFailure ?? .chunkNotFound(hash)
    }

    /// Reads the bytes at one location, checking its guard before and after.
    public func read(_ location: ChunkLocation) throws(ChunkStoreError) -> [UInt8] {
        let file = try FileDescriptor(path: location.path, flags: O_RDONLY)
        try check(file, location)
        let bytes = try file.readBytes(count: location.length, at: location.offset)
        guard bytes.count == location.length else { throw .stale(path: location.path) }
        try check(file, location)
        return bytes
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
