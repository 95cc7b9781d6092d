import Foundation

@testable import DevCloud

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Canonical "shapes" of XML and JSON bodies: element names by namespace URI and their nesting (children as a
/// multiset), with the text of the leaves that must agree (permission letters, statuses, exception classes, OCS
/// codes ...). Values that legitimately differ between servers (dates, etags, ids, tokens, hosts) are left out.
enum Shape {
    /// XML leaves whose text must be equal.
    static let exactXML: Set<String> = [
        "{DAV:}status", "{http://sabredav.org/ns}exception", "{http://sabredav.org/ns}message",
        "{http://owncloud.org/ns}permissions", "{http://nextcloud.org/ns}mount-type",
        "{http://nextcloud.org/ns}is-mount-root", "{http://open-collaboration-services.org/ns}share-permissions",
        "{http://owncloud.org/ns}share-type", "{DAV:}getcontentlength", "{DAV:}getcontenttype",
        "{http://owncloud.org/ns}checksum", "{http://nextcloud.org/ns}lock", "{http://nextcloud.org/ns}lock-owner",
        "{http://nextcloud.org/ns}lock-owner-type", "{http://nextcloud.org/ns}version-author", "{DAV:}depth",
        "{http://owncloud.org/ns}owner-id", "{http://owncloud.org/ns}owner-display-name",
        "{https://harp.invalid/ns}root", "{}status", "{}statuscode", "{}message", "{}share_type", "{}permissions",
        "{}item_type", "{}path", "{}mount-type", "{}is-mount-root", "{}can_edit", "{}item_permissions",
        "{}share_with", "{}uid_owner", "{}file_target", "{}mimetype", "{}storage_id", "{}id", "{}enabled",
        "{}displayname", "{}string", "{}major", "{}webdav-root", "{}chunking",
    ]

    /// JSON keys whose values must be equal.
    static let exactJSON: Set<String> = [
        "status", "statuscode", "message", "share_type", "permissions", "item_type", "path", "mount-type",
        "is-mount-root", "can_edit", "can_delete", "item_permissions", "share_with", "uid_owner", "file_target",
        "mimetype", "storage_id", "enabled", "displayname", "loginName", "installed", "maintenance", "version",
        "versionstring", "productname", "major", "string", "webdav-root", "chunking", "max_size", "delay",
        "mail_send",
    ]

    // MARK: XML

    final class Node {
        let key: String
        var children: [Node] = []
        var text = ""
        init(_ key: String) { self.key = key }
    }

    static func xml(_ text: String, hrefs: (String) -> String = { $0 }) -> String? {
        let builder = Builder()
        let parser = XMLParser(data: Data(text.utf8))
        parser.shouldProcessNamespaces = true
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else { return nil }
        return canonical(root, hrefs: hrefs)
    }

    static func canonical(_ node: Node, hrefs: (String) -> String) -> String {
        var value = node.key
        let trimmed = node.text.trimmingCharacters(in: .whitespacesAndNewlines)
        if node.key == "{DAV:}href" {
            value += trimmed.contains("opaquelocktoken") ? "=<token>" : "=" + hrefs(trimmed)
        } else if exactXML.contains(node.key), node.children.isEmpty {
            value += "=" + trimmed
        }
        if !node.children.isEmpty {
            value += "[" + node.children.map { canonical($0, hrefs: hrefs) }.sorted().joined(separator: ",") + "]"
        }
        return value
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [Node] = []
        var root: Node?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            let node = Node("{\(namespaceURI ?? "")}\(elementName)")
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

    // MARK: JSON

    static func json(_ text: String) -> String? {
        OCSValue.parse(json: text).map { canonical($0, key: "") }
    }

    static func canonical(_ value: OCSValue, key: String) -> String {
        let exact = exactJSON.contains(key)
        switch value {
        case .string(let string): return "s" + (exact ? "=" + string : "")
        case .int(let number): return "n" + (exact ? "=\(number)" : "")
        case .bool(let flag): return "b" + (exact ? "=\(flag)" : "")
        case .null: return "null"
        case .array(let items): return "[" + items.map { canonical($0, key: key) }.joined(separator: ",") + "]"
        case .object(let pairs):
            return "{" + pairs.map { "\($0.0):" + canonical($0.1, key: $0.0) }.sorted().joined(separator: ",") + "}"
        }
    }
}
