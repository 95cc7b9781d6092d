/// `cloud/user`: who the credentials belong to.
public struct UserInfo: Sendable, Hashable, Codable {
    /// Storage quota; -3 in `total`/`quota`/`free` means unlimited.
    public struct Quota: Sendable, Hashable, Codable {
        public var free: LenientNumber?
        public var used: LenientNumber?
        public var total: LenientNumber?
        public var relative: LenientNumber?
        public var quota: LenientNumber?

        /// True when the server reports no limit.
        public var isUnlimited: Bool { (quota?.value ?? -3) < 0 }
    }

    /// The user id (login name for WebDAV paths).
    public var id: String
    /// The display name.
    public var displayname: String?
    /// The e-mail address, if set.
    public var email: String?
    /// Quota figures.
    public var quota: Quota?
    /// Group ids.
    public var groups: [String]?
    /// Preferred language.
    public var language: String?
}

/// The parts of `cloud/capabilities` harp uses.
public struct Capabilities: Sendable, Hashable, Decodable {
    /// The server version.
    public struct Version: Sendable, Hashable, Decodable {
        public var major: Int
        public var minor: Int
        public var micro: Int
        public var string: String
    }

    /// The capabilities proper; every part is optional (the anonymous set has only a few).
    public struct Features: Sendable, Hashable, Decodable {
        public struct Files: Sendable, Hashable, Decodable {
            public struct ChunkedUpload: Sendable, Hashable, Decodable {
                public var maxSize: Int64?
                public var maxParallelCount: Int?
                enum CodingKeys: String, CodingKey {
                    case maxSize = "max_size"
                    case maxParallelCount = "max_parallel_count"
                }
            }
            public var chunkedUpload: ChunkedUpload?
            public var locking: String?
            public var versioning: Bool?
            enum CodingKeys: String, CodingKey {
                case chunkedUpload = "chunked_upload"
                case locking, versioning
            }
        }
        public struct DAV: Sendable, Hashable, Decodable {
            public var chunking: String?
        }
        public struct BruteForce: Sendable, Hashable, Decodable {
            /// The delay in milliseconds the server imposes on this address (0 when not throttled).
            public var delay: Int?
        }
        public var files: Files?
        public var dav: DAV?
        public var bruteforce: BruteForce?
    }

    public var version: Version
    public var capabilities: Features
}

/// One share from the OCS sharing API.
public struct Share: Sendable, Hashable, Codable {
    /// The share id (a string in the API).
    public var id: String
    /// 0 user, 1 group, 3 public link, 4 e-mail, 6 federated, …
    public var shareType: Int
    /// Who created the share.
    public var owner: String?
    /// The path as the requesting user sees it.
    public var path: String?
    /// "file" or "folder".
    public var itemType: String?
    /// The share's permission bits.
    public var permissions: SharePermissions
    /// The recipient (user or group id).
    public var shareWith: String?
    /// The recipient's display name.
    public var shareWithDisplayName: String?
    /// The shared node's fileid (`oc:fileid`).
    public var fileSource: Int64?
    /// The recipient's mount type ("shared" when listed as shared with me).
    public var mountType: String?
    /// The owner of the shared file (differs from `owner` for a reshare).
    public var fileOwner: String?
    /// Where the shared node is in the recipient's tree (`file_target`).
    public var fileTarget: String?

    enum CodingKeys: String, CodingKey {
        case id
        case shareType = "share_type"
        case owner = "uid_owner"
        case path
        case itemType = "item_type"
        case permissions
        case shareWith = "share_with"
        case shareWithDisplayName = "share_with_displayname"
        case fileSource = "file_source"
        case mountType = "mount-type"
        case fileOwner = "uid_file_owner"
        case fileTarget = "file_target"
    }
}

/// The start of a Login Flow v2: open `login` in a browser, then poll.
public struct LoginFlow: Sendable, Hashable, Decodable, CustomStringConvertible {
    public struct Poll: Sendable, Hashable, Decodable, CustomStringConvertible {
        /// The secret poll token; never logged or printed.
        public var token: String
        /// Where to POST `token=…`.
        public var endpoint: String

        public var description: String { "Poll(endpoint: \(endpoint), token: <redacted>)" }
    }
    public var poll: Poll
    /// The URL the user opens in a browser.
    public var login: String

    /// Shows the login URL and the endpoint, never the poll token.
    public var description: String { "LoginFlow(login: \(login), poll: \(poll.endpoint), token: <redacted>)" }
}

/// The result of a granted Login Flow v2.
public struct LoginFlowResult: Sendable, Hashable, Decodable, CustomStringConvertible {
    public var server: String
    public var loginName: String
    /// The new app password; never logged or printed.
    public var appPassword: String

    public var description: String {
        "LoginFlowResult(server: \(server), loginName: \(loginName), appPassword: <redacted>)"
    }
}
