internal import GRDB

/// The index's schema, as named migrations. A migration is never edited after it ships: add a new one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: versions, chunks, files, downloads") { db in
            try db.execute(sql: v1)
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
}
