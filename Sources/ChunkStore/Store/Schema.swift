internal import GRDB

/// The index's schema, as named migrations. A migration is never edited after it ships: add a new one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: versions, chunks, files, downloads") { db in
            try db.execute(sql: v1)
        }
        migrator.registerMigration("v2: provenance") { db in
            try db.execute(sql: v2)
        }
        return migrator
    }

    /// Reference counts are kept by triggers, so no code path can forget them: a chunk's `refCount` is the number of
    /// manifest entries (over all versions) that name it, and a chunk row exists exactly while that number is above 0.
    static let v1 = """
        CREATE TABLE version (
            id INTEGER PRIMARY KEY,
            root BLOB NOT NULL UNIQUE CHECK (length(root) = 32),
            size INTEGER NOT NULL CHECK (size >= 0),
            chunkCount INTEGER NOT NULL CHECK (chunkCount >= 0),
            parameters TEXT NOT NULL,
            createdAt DOUBLE NOT NULL
        );
        CREATE TABLE chunk (
            hash BLOB PRIMARY KEY CHECK (length(hash) = 32),
            length INTEGER NOT NULL CHECK (length > 0),
            refCount INTEGER NOT NULL DEFAULT 0 CHECK (refCount >= 0)
        ) WITHOUT ROWID;
        CREATE TABLE versionChunk (
            versionId INTEGER NOT NULL REFERENCES version(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL CHECK (idx >= 0),
            chunkHash BLOB NOT NULL REFERENCES chunk(hash),
            offset INTEGER NOT NULL CHECK (offset >= 0),
            length INTEGER NOT NULL CHECK (length > 0),
            PRIMARY KEY (versionId, idx)
        ) WITHOUT ROWID;
        CREATE INDEX versionChunk_chunkHash ON versionChunk(chunkHash);
        CREATE TRIGGER versionChunk_before_insert BEFORE INSERT ON versionChunk BEGIN
            INSERT OR IGNORE INTO chunk(hash, length, refCount) VALUES (NEW.chunkHash, NEW.length, 0);
        END;
        CREATE TRIGGER versionChunk_after_insert AFTER INSERT ON versionChunk BEGIN
            UPDATE chunk SET refCount = refCount + 1 WHERE hash = NEW.chunkHash;
        END;
        CREATE TRIGGER versionChunk_after_delete AFTER DELETE ON versionChunk BEGIN
            UPDATE chunk SET refCount = refCount - 1 WHERE hash = OLD.chunkHash;
            DELETE FROM chunk WHERE hash = OLD.chunkHash AND refCount = 0;
        END;
        CREATE TABLE file (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            versionId INTEGER NOT NULL REFERENCES version(id),
            size INTEGER NOT NULL,
            mtimeNs INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            device INTEGER NOT NULL,
            indexedAt DOUBLE NOT NULL
        );
        CREATE INDEX file_versionId ON file(versionId);
        CREATE TABLE download (
            id INTEGER PRIMARY KEY,
            versionId INTEGER NOT NULL REFERENCES version(id),
            destination TEXT NOT NULL UNIQUE,
            partPath TEXT NOT NULL UNIQUE,
            partInode INTEGER NOT NULL,
            createdAt DOUBLE NOT NULL
        );
        CREATE INDEX download_versionId ON download(versionId);
        CREATE TABLE downloadChunk (
            downloadId INTEGER NOT NULL REFERENCES download(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL CHECK (idx >= 0),
            PRIMARY KEY (downloadId, idx)
        ) WITHOUT ROWID;
        """

    /// Where the bytes of a local file came from (DESIGN §4, "Provenance"): the server version (fileid, etag, size,
    /// mtime) that a download of, an upload of, or a full comparison with those bytes established, and the file's
    /// guard at that moment. A sidecar is published only for a file whose guard still matches its provenance row.
    static let v2 = """
        CREATE TABLE provenance (
            path TEXT PRIMARY KEY,
            root BLOB NOT NULL CHECK (length(root) = 32),
            fileid TEXT NOT NULL CHECK (length(fileid) > 0),
            etag TEXT NOT NULL CHECK (length(etag) > 0),
            remoteSize INTEGER NOT NULL CHECK (remoteSize >= 0),
            remoteMtime INTEGER NOT NULL,
            size INTEGER NOT NULL CHECK (size = remoteSize),
            mtimeNs INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            device INTEGER NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('download', 'upload', 'comparison')),
            recordedAt DOUBLE NOT NULL
        ) WITHOUT ROWID;
        """
}
