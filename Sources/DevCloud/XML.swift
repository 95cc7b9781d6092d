import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A qualified XML name: namespace URI and local name. Requests are matched by URI, never by prefix.
struct QName: Hashable, Sendable {
    var namespace: String
    var name: String

    static func dav(_ name: String) -> QName { QName(namespace: XML.dav, name: name) }
    static func oc(_ name: String) -> QName { QName(namespace: XML.oc, name: name) }
    static func nc(_ name: String) -> QName { QName(namespace: XML.nc, name: name) }
    static func ocs(_ name: String) -> QName { QName(namespace: XML.ocs, name: name) }
}

/// A parsed XML element (namespace-aware); small request bodies only.
final class XMLElementNode {
    let qname: QName
    var children: [XMLElementNode] = []
    var text = ""

    init(_ qname: QName) { self.qname = qname }

    func child(_ qname: QName) -> XMLElementNode? { children.first { $0.qname == qname } }
}

enum XML {
    static let dav = "DAV:"
    static let oc = "http://owncloud.org/ns"
    static let nc = "http://nextcloud.org/ns"
    static let sabre = "http://sabredav.org/ns"
    static let ocs = "http://open-collaboration-services.org/ns"

    /// The multistatus opening, with the four namespaces Nextcloud declares.
    static let multistatusOpen =
        "<?xml version=\"1.0\"?>\n<d:multistatus xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\" xmlns:oc=\"http://owncloud.org/ns\" xmlns:nc=\"http://nextcloud.org/ns\">"

    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            default: result.append(character)
            }
        }
        return result
    }

    /// Element name with a prefix for the declared namespaces, or an `x1:` prefix declared on the element itself.
    static func open(_ qname: QName) -> (open: String, close: String) {
        let prefixes = [dav: "d", oc: "oc", nc: "nc", sabre: "s"]
        if let prefix = prefixes[qname.namespace] {
            return ("\(prefix):\(qname.name)", "\(prefix):\(qname.name)")
        }
        if qname.namespace.isEmpty {
            return ("\(qname.name) xmlns=\"\"", qname.name)
        }
        return ("x1:\(qname.name) xmlns:x1=\"\(escape(qname.namespace))\"", "x1:\(qname.name)")
    }

    /// `<p:name>inner</p:name>`, or `<p:name/>` when `inner` is nil.
    static func element(_ qname: QName, inner: String?) -> String {
        let (open, close) = open(qname)
        guard let inner else { return "<\(open)/>" }
        return "<\(open)>\(inner)</\(close)>"
    }

    /// Parses a request body; nil for a body that is not well-formed XML.
    static func parse(_ text: String) -> XMLElementNode? {
        let delegate = Builder()
        let parser = XMLParser(data: Data(text.utf8))
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        parser.delegate = delegate
        guard parser.parse() else { return nil }
        return delegate.root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLElementNode] = []
        var root: XMLElementNode?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            let node = XMLElementNode(QName(namespace: namespaceURI ?? "", name: elementName))
            stack.last?.children.append(node)
            if root == nil { root = node }
            stack.append(node)
        }

        func parser(
            _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?
        ) {
            _ = stack.popLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            stack.last?.text += string
        }
    }
}

/// What a PROPFIND asks for.
enum PropfindRequest {
    case allprop
    case propname
    case props([QName])

    /// A missing or empty body means allprop (as recorded in 010).
    static func parse(_ body: String) throws -> PropfindRequest {
        if body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return .allprop }
        guard let root = XML.parse(body), root.qname == .dav("propfind") else {
            throw DAVError.badRequest("The request body must be a valid propfind")
        }
        if root.child(.dav("propname")) != nil { return .propname }
        if let prop = root.child(.dav("prop")) { return .props(prop.children.map(\.qname)) }
        return .allprop
    }
}
