import Foundation

/// Group Folders' advanced permissions, as far as a client can see them: a node with ACL rules of its own reports them
/// in `nc:acl-list`. DevCloud reports the rules that a test sets through the admin surface; it does not enforce them
/// (docs/devcloud.md). The element shape follows the Group Folders app; no exchange in the recorded samples has it.
extension DevCloudServer {
    /// One rule of a node's `nc:acl-list`.
    public struct ACLRule: Sendable, Codable, Equatable {
        /// "user" or "group".
        public var mappingType: String
        public var mappingId: String
        /// Which permission bits the rule decides (Nextcloud's 1 read, 2 update, 4 create, 8 delete, 16 share).
        public var mask: Int
        /// The decided bits' values.
        public var permissions: Int

        public init(mappingType: String, mappingId: String, mask: Int, permissions: Int) {
            self.mappingType = mappingType
            self.mappingId = mappingId
            self.mask = mask
            self.permissions = permissions
        }
    }

    /// Sets the ACL rules of `owner`'s node at `path` (an empty list removes them).
    public func setACL(owner: String, path: String, rules: [ACLRule]) throws {
        let normalized = try normalizedPath(path)
        guard !normalized.isEmpty, fileExists(owner: owner, path: normalized) else {
            throw DevCloudError.noSuchPath(owner, path)
        }
        for rule in rules {
            guard ["user", "group"].contains(rule.mappingType), (0...31).contains(rule.mask),
                (0...31).contains(rule.permissions)
            else { throw DevCloudError.badPermissions(rule.mask) }
        }
        state.withLock { $0.aclRules[Self.aclKey(owner, normalized)] = rules.isEmpty ? nil : rules }
    }

    /// The inner XML of `nc:acl-list` for a node, or nil when it has no rules of its own.
    func aclListXML(owner: String, ownerPath: String) -> String? {
        guard let rules = state.withLock({ $0.aclRules[Self.aclKey(owner, ownerPath)] }) else { return nil }
        return rules.map { rule in
            "<nc:acl><nc:acl-mapping-type>\(XML.escape(rule.mappingType))</nc:acl-mapping-type>"
                + "<nc:acl-mapping-id>\(XML.escape(rule.mappingId))</nc:acl-mapping-id>"
                + "<nc:acl-mapping-display-name>\(XML.escape(rule.mappingId))</nc:acl-mapping-display-name>"
                + "<nc:acl-mask>\(rule.mask)</nc:acl-mask><nc:acl-permissions>\(rule.permissions)</nc:acl-permissions>"
                + "</nc:acl>"
        }.joined()
    }

    private static func aclKey(_ owner: String, _ path: String) -> String { owner + "\n" + path }
}
