internal import Foundation

/// The `meta` block of every OCS answer.
public struct OCSMeta: Sendable, Hashable, Decodable {
    /// "ok" or "failure".
    public var status: String
    /// 100 (v1) or 200 (v2) for success; otherwise an HTTP-like error code.
    public var statuscode: Int
    /// The server's message.
    public var message: String?

    /// True for the success codes of OCS v1 (100) and v2 (200).
    public var isSuccess: Bool { statuscode == 100 || statuscode == 200 }
}

/// Decoding of OCS envelopes, `{"ocs":{"meta":{…},"data":…}}` and `<ocs><meta>…</meta><data>…</data></ocs>`.
enum OCSEnvelope {
    private struct MetaOnly: Decodable {
        struct Inner: Decodable { var meta: OCSMeta }
        var ocs: Inner
    }

    private struct Full<T: Decodable>: Decodable {
        struct Inner: Decodable {
            var meta: OCSMeta
            var data: T
        }
        var ocs: Inner
    }

    /// The meta block of a JSON envelope, or nil when the body is not one.
    static func meta(json: Data) -> OCSMeta? {
        try? JSONDecoder().decode(MetaOnly.self, from: json).ocs.meta
    }

    /// The `data` of a JSON envelope whose meta says success.
    static func decode<T: Decodable>(_ type: T.Type, json: Data, path: String) throws(NextcloudError) -> T {
        guard let meta = meta(json: json) else {
            throw NextcloudError(.malformedResponse, path: path, detail: "not an OCS JSON envelope")
        }
        guard meta.isSuccess else {
            throw NextcloudError(
                NextcloudError.kind(forStatus: meta.statuscode), status: meta.statuscode, path: path,
                detail: meta.message)
        }
        do {
            return try JSONDecoder().decode(Full<T>.self, from: json).ocs.data
        } catch {
            throw NextcloudError(.malformedResponse, path: path, detail: "unexpected OCS data: \(error)")
        }
    }

    /// The meta block and the `data` element of an XML envelope.
    static func parseXML(_ body: Data, path: String) throws(NextcloudError) -> (meta: OCSMeta, data: XMLElement?) {
        let root = try XMLElement.parse(body, path: path)
        guard root.name == "ocs", let meta = root.child("", "meta"),
            let status = meta.child("", "status")?.trimmedText,
            let code = meta.child("", "statuscode").flatMap({ Int($0.trimmedText) })
        else {
            throw NextcloudError(.malformedResponse, path: path, detail: "not an OCS XML envelope")
        }
        let message = meta.child("", "message")?.trimmedText
        return (OCSMeta(status: status, statuscode: code, message: message), root.child("", "data"))
    }
}

/// A JSON number that Nextcloud sometimes sends as an integer, a float or a string.
public struct LenientNumber: Sendable, Hashable, Codable {
    /// The value as a double.
    public var value: Double

    public init(_ value: Double) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Double.self) {
            value = number
        } else if let text = try? container.decode(String.self), let number = Double(text) {
            value = number
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a number")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    /// The value as an integer (fractions cut off).
    public var integer: Int64 { Int64(value) }
}
