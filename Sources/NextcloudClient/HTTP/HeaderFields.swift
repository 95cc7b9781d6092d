import HTTPTypes

/// The WebDAV, Nextcloud and ownCloud header names this client sends or reads, beside swift-http-types' standard
/// ones (`.eTag`, `.contentRange`, `.ifMatch`, ...). Lookups in `HTTPFields` ignore case, as HTTP says.
extension HTTPField.Name {
    // Each literal is a valid token, so the initializer cannot fail.
    static let depth = Self("Depth")!
    static let destination = Self("Destination")!
    static let overwrite = Self("Overwrite")!
    static let ocChecksum = Self("OC-Checksum")!
    static let ocETag = Self("OC-ETag")!
    static let ocFileId = Self("OC-FileId")!
    static let ocTotalLength = Self("OC-Total-Length")!
    static let ocMtime = Self("X-OC-Mtime")!
    static let ocsAPIRequest = Self("OCS-APIRequest")!
}

extension HTTPFields {
    /// Parses one raw header line (`Name: value`, with or without the CRLF) into the list.
    /// Lines without a colon (status lines, folded continuations) and names that are not HTTP tokens are ignored.
    mutating func addRawLine(_ line: Substring) {
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].trimmingASCIIWhitespace()
        let value = line[line.index(after: colon)...].trimmingASCIIWhitespace()
        guard let fieldName = HTTPField.Name(String(name)) else { return }
        append(HTTPField(name: fieldName, value: String(value)))
    }
}

extension StringProtocol {
    /// Drops spaces, tabs, CR and LF at both ends. Works on Unicode scalars, because "\r\n"
    /// is a single `Character` and would slip past a per-character check.
    func trimmingASCIIWhitespace() -> Substring {
        let s = Substring(self)
        let isSpace: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        let scalars = s.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
            let last = scalars.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return Substring(scalars[first...last])
    }
}
