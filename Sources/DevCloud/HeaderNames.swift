import HTTPTypes

/// The WebDAV, Nextcloud and ownCloud header names DevCloud reads and writes, beside swift-http-types' standard
/// ones (`.eTag`, `.contentType`, `.ifMatch` and so on). Each is spelled as Nextcloud spells it on the wire; a
/// lookup ignores case, as HTTP says.
extension HTTPField.Name {
    // Each literal is a valid token, so the initializer cannot fail.
    static let dav = Self("DAV")!
    static let depth = Self("Depth")!
    static let destination = Self("Destination")!
    static let davIf = Self("If")!
    static let lockToken = Self("Lock-Token")!
    static let msAuthorVia = Self("MS-Author-Via")!
    static let ocChecksum = Self("OC-Checksum")!
    static let ocETag = Self("OC-ETag")!
    static let ocFileId = Self("OC-FileId")!
    static let ocTotalLength = Self("OC-Total-Length")!
    static let ocsAPIRequest = Self("OCS-APIRequest")!
    static let overwrite = Self("Overwrite")!
    static let timeout = Self("Timeout")!
    static let xAccelBuffering = Self("X-Accel-Buffering")!
    static let ncOwnerId = Self("X-NC-OwnerId")!
    static let ncPermissions = Self("X-NC-Permissions")!
    /// `X-OC-MTime`: the client's modification time in a request; `accepted` in the answer when it was kept.
    static let ocMTime = Self("X-OC-MTime")!
    static let xUserLock = Self("X-User-Lock")!
    /// Nextcloud's empty answers spell it this way (lowercase t); kept for byte-identical replays.
    static let emptyContentType = Self("Content-type")!
}
