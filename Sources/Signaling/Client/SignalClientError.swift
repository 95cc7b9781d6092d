public import SignalingProtocol

/// Why a ``SignalClient`` call failed.
public enum SignalClientError: Error, Equatable, Sendable {
    /// The server refused the request with this code (see docs/signaling.md, "Errors").
    case refused(SignalErrorCode)
    /// No connection to the server right now (relay streams need one).
    case notConnected
    /// The connection dropped before the answer came.
    case disconnected
    /// The relay stream is closed.
    case relayClosed
    /// The pinned fingerprint is not 64 hex digits.
    case badPin
    /// The server's certificate does not match the pinned fingerprint.
    case pinMismatch
    /// No answer in time.
    case timeout
    /// The server sent something that is not a protocol message.
    case badServerMessage
}
