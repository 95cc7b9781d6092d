internal import Foundation

extension NextcloudClient {
    /// `cloud/user`: id, display name, quota.
    public func currentUser() async throws -> UserInfo {
        try await ocs(UserInfo.self, method: "GET", endpoint: "/ocs/v2.php/cloud/user")
    }

    /// `cloud/capabilities`.
    public func capabilities() async throws -> Capabilities {
        try await ocs(Capabilities.self, method: "GET", endpoint: "/ocs/v2.php/cloud/capabilities")
    }

    /// The shares of `path` (as its owner or a resharer sees them).
    public func shares(of path: String, includeReshares: Bool = true) async throws -> [Share] {
        let normalized = PathEncoding.normalize(path)
        return try await ocs(
            [Share].self, method: "GET", endpoint: "/ocs/v2.php/apps/files_sharing/api/v1/shares",
            query: [("path", normalized), ("reshares", includeReshares ? "true" : "false")])
    }

    /// Everything shared with this user.
    public func sharedWithMe() async throws -> [Share] {
        try await ocs(
            [Share].self, method: "GET", endpoint: "/ocs/v2.php/apps/files_sharing/api/v1/shares",
            query: [("shared_with_me", "true")])
    }

    /// The share `id` as this user sees it (its owner or its recipient); at most `limit` bytes of answer are read.
    public func share(id: String, limit: Int = 64 << 10) async throws -> Share {
        let shares = try await ocs(
            [Share].self, method: "GET",
            endpoint: "/ocs/v2.php/apps/files_sharing/api/v1/shares/" + PathEncoding.encodeSegment(id), limit: limit)
        guard let share = shares.first, shares.count == 1, share.id == id else {
            throw NextcloudError(.malformedResponse, path: "share \(id)", detail: "not exactly the share asked for")
        }
        return share
    }

    /// Shares `path` with the user `recipient` (share type 0).
    public func createUserShare(
        of path: String, with recipient: String, permissions: SharePermissions
    ) async throws
        -> Share
    {
        try await ocs(
            Share.self, method: "POST", endpoint: "/ocs/v2.php/apps/files_sharing/api/v1/shares",
            form: [
                ("path", PathEncoding.normalize(path)), ("shareType", "0"), ("shareWith", recipient),
                ("permissions", String(permissions.rawValue)),
            ])
    }

    /// Deletes the share with `id`.
    public func deleteShare(id: String) async throws {
        _ = try await ocs(
            EmptyData.self, method: "DELETE",
            endpoint: "/ocs/v2.php/apps/files_sharing/api/v1/shares/" + PathEncoding.encodeSegment(id))
    }

    /// Revokes the app password this client uses (logout). Afterwards it gets 401.
    public func deleteAppPassword() async throws {
        _ = try await ocs(EmptyData.self, method: "DELETE", endpoint: "/ocs/v2.php/core/apppassword")
    }

    /// An OCS call: always `OCS-APIRequest: true` and `format=json`.
    func ocs<T: Decodable>(
        _ type: T.Type, method: String, endpoint: String, query: [(String, String)] = [],
        form: [(String, String)]? = nil, limit: Int = 64 << 20
    ) async throws -> T {
        let request = try Self.ocsRequest(
            base: credentials.server, method: method, endpoint: endpoint, query: query, form: form)
        let response = try await send(request, limit: limit)
        return try OCSEnvelope.decode(T.self, json: response.body, path: endpoint)
    }

    static func ocsRequest(
        base: URL, method: String, endpoint: String, query: [(String, String)], form: [(String, String)]?
    ) throws -> HTTPRequest {
        let queryText = PathEncoding.formBody(query + [("format", "json")])
        var request = HTTPRequest(
            method: method, url: try url(base: base, endpoint + "?" + queryText), displayPath: endpoint)
        request.headers = [.ocsAPIRequest: "true", .accept: "application/json"]
        if let form {
            request.headers[.contentType] = "application/x-www-form-urlencoded"
            request.body = .data(Data(PathEncoding.formBody(form).utf8))
        }
        request.acceptCompressed = true
        return request
    }
}

/// OCS `data` that carries nothing harp needs (`[]` or `{}`).
struct EmptyData: Decodable {
    init(from decoder: any Decoder) throws {}
}
