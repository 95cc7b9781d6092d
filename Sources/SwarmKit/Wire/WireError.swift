/// A violation of the wire protocol by the remote peer. The connection that sees one is closed with
/// `goodbye(reason)` (docs/protocol.md §6).
public struct WireProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The goodbye reason sent to the peer.
    public let reason: GoodbyeReason
    /// What exactly was wrong, for the log (never contains key material).
    public let detail: String

    public init(_ reason: GoodbyeReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(reason): \(detail)" }

    static func malformed(_ kind: WireMessage.Kind, _ detail: String) -> WireProtocolError {
        WireProtocolError(.malformedMessage, "\(kind): \(detail)")
    }
}
