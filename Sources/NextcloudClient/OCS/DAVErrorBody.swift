public import struct Foundation.Data

/// The `<d:error>` body Sabre sends with DAV errors.
public struct DAVErrorBody: Sendable, Hashable {
    /// `s:exception`, e.g. `Sabre\DAV\Exception\NotFound`.
    public var exception: String
    /// `s:message`, possibly empty.
    public var message: String

    /// Parses a DAV error body; nil when the body is not one.
    public init?(_ body: Data) {
        guard let root = try? XMLElement.parse(body, path: nil), root.namespace == XMLNamespace.dav,
            root.name == "error"
        else { return nil }
        exception = root.child(XMLNamespace.sabre, "exception")?.trimmedText ?? ""
        message = root.child(XMLNamespace.sabre, "message")?.trimmedText ?? ""
    }
}
