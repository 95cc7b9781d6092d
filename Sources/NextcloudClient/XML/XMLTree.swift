internal import Foundation

#if canImport(FoundationXML)
    internal import FoundationXML
#endif

/// A parsed XML element, named by namespace URI and local name (never by prefix: Nextcloud
/// generates prefixes such as `x1:` for namespaces it did not declare up front).
struct XMLElement: Sendable {
    var namespace: String
    var name: String
    var text = ""
    var children: [XMLElement] = []

    /// The first child with this namespace and local name.
    func child(_ namespace: String, _ name: String) -> XMLElement? {
        children.first { $0.namespace == namespace && $0.name == name }
    }

    /// Every child with this namespace and local name.
    func children(_ namespace: String, _ name: String) -> [XMLElement] {
        children.filter { $0.namespace == namespace && $0.name == name }
    }

    /// The element's text with surrounding whitespace removed.
    var trimmedText: String { String(text.trimmingASCIIWhitespace()) }

    /// Parses a document with namespace processing on; throws `.malformedResponse` on bad XML.
    static func parse(_ data: Data, path: String?) throws(NextcloudError) -> XMLElement {
        let builder = TreeBuilder()
        let parser = XMLParser(data: data)
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            let reason = parser.parserError.map { "XML error: \($0.localizedDescription)" } ?? "empty XML document"
            throw NextcloudError(.malformedResponse, path: path, detail: reason)
        }
        return root
    }
}

/// Namespace URIs used by Nextcloud's WebDAV and OCS answers.
enum XMLNamespace {
    static let dav = "DAV:"
    static let owncloud = "http://owncloud.org/ns"
    static let nextcloud = "http://nextcloud.org/ns"
    static let ocs = "http://open-collaboration-services.org/ns"
    static let sabre = "http://sabredav.org/ns"
}

private final class TreeBuilder: NSObject, XMLParserDelegate {
    private var stack: [XMLElement] = []
    private(set) var root: XMLElement?
    private static let maximumDepth = 64

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
        qualifiedName: String?, attributes: [String: String] = [:]
    ) {
        guard stack.count < Self.maximumDepth else {
            parser.abortParsing()
            return
        }
        stack.append(XMLElement(namespace: namespaceURI ?? "", name: elementName))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].text += string
    }

    func parser(
        _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?
    ) {
        guard let done = stack.popLast() else { return }
        if stack.isEmpty {
            root = done
        } else {
            stack[stack.count - 1].children.append(done)
        }
    }
}
