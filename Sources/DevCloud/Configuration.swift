import Foundation

/// How a DevCloud instance is set up: where its files live, who may log in, which shares exist, and the knobs that
/// tests and benchmarks turn (egress limit, Login Flow auto-grant, brute-force thresholds).
///
/// Loadable from a JSON file with ``DevCloudConfiguration/load(path:)``; every key but `dataDirectory` may be left out.
public struct DevCloudConfiguration: Sendable, Codable {
    /// Files live in `dataDirectory/files/USER/...`, the index in `dataDirectory/devcloud.sqlite`.
    public var dataDirectory: String
    /// Accounts; each user's password is an account password (it can be exchanged for app passwords).
    public var users: [User]
    /// User shares created at start if they do not exist yet.
    public var shares: [Share]
    /// Egress limit for file bodies, shared by all connections; `nil` means unlimited.
    public var egressBytesPerSecond: Int?
    /// When set, every Login Flow v2 started on this server is granted at once for this user (tests, demo).
    public var autoGrantLoginFlowUser: String?
    /// Failed logins from one address after which that address gets 429 (Nextcloud: 11 failures, the 12th is refused).
    public var bruteForceMaxFailures: Int
    /// How long an address stays throttled after its last failure, in seconds.
    public var bruteForceWindowSeconds: Double

    /// One account.
    public struct User: Sendable, Codable, Equatable {
        public var name: String
        public var password: String
        public var quotaBytes: Int64?
        public var displayName: String
        public var email: String?

        public init(
            name: String, password: String, quotaBytes: Int64? = nil, displayName: String? = nil, email: String? = nil
        ) {
            self.name = name
            self.password = password
            self.quotaBytes = quotaBytes
            self.displayName = displayName ?? name
            self.email = email
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let name = try c.decode(String.self, forKey: .name)
            self.init(
                name: name,
                password: try c.decode(String.self, forKey: .password),
                quotaBytes: try c.decodeIfPresent(Int64.self, forKey: .quotaBytes),
                displayName: try c.decodeIfPresent(String.self, forKey: .displayName),
                email: try c.decodeIfPresent(String.self, forKey: .email)
            )
        }
    }

    /// A user share: `owner` shares the folder or file at `path` (in the owner's tree) with `sharee`.
    /// `permissions` are OCS bits: 1 read, 2 update, 4 create, 8 delete, 16 share.
    public struct Share: Sendable, Codable, Equatable {
        public var owner: String
        public var path: String
        public var sharee: String
        public var permissions: Int

        public init(owner: String, path: String, sharee: String, permissions: Int) {
            self.owner = owner
            self.path = path
            self.sharee = sharee
            self.permissions = permissions
        }
    }

    public init(
        dataDirectory: String,
        users: [User] = [],
        shares: [Share] = [],
        egressBytesPerSecond: Int? = nil,
        autoGrantLoginFlowUser: String? = nil,
        bruteForceMaxFailures: Int = 11,
        bruteForceWindowSeconds: Double = 300
    ) {
        self.dataDirectory = dataDirectory
        self.users = users
        self.shares = shares
        self.egressBytesPerSecond = egressBytesPerSecond
        self.autoGrantLoginFlowUser = autoGrantLoginFlowUser
        self.bruteForceMaxFailures = bruteForceMaxFailures
        self.bruteForceWindowSeconds = bruteForceWindowSeconds
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            dataDirectory: try c.decode(String.self, forKey: .dataDirectory),
            users: try c.decodeIfPresent([User].self, forKey: .users) ?? [],
            shares: try c.decodeIfPresent([Share].self, forKey: .shares) ?? [],
            egressBytesPerSecond: try c.decodeIfPresent(Int.self, forKey: .egressBytesPerSecond),
            autoGrantLoginFlowUser: try c.decodeIfPresent(String.self, forKey: .autoGrantLoginFlowUser),
            bruteForceMaxFailures: try c.decodeIfPresent(Int.self, forKey: .bruteForceMaxFailures) ?? 11,
            bruteForceWindowSeconds: try c.decodeIfPresent(Double.self, forKey: .bruteForceWindowSeconds) ?? 300
        )
    }

    /// Reads a JSON configuration file. A relative `dataDirectory` is taken relative to the file's folder.
    public static func load(path: String) throws -> DevCloudConfiguration {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var configuration = try JSONDecoder().decode(DevCloudConfiguration.self, from: data)
        if !configuration.dataDirectory.hasPrefix("/") {
            let base = URL(fileURLWithPath: path).deletingLastPathComponent()
            configuration.dataDirectory = base.appendingPathComponent(configuration.dataDirectory).path
        }
        return configuration
    }
}
