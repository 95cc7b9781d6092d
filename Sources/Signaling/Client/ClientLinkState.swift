import HummingbirdWSClient

/// The client's connection lifecycle: disconnected → awaiting challenge → awaiting welcome → ready → disconnected.
struct ClientLinkState {
    private enum State {
        case disconnected
        case awaitingChallenge(WebSocketOutboundWriter)
        case awaitingWelcome(WebSocketOutboundWriter, nonce: [UInt8])
        case ready(WebSocketOutboundWriter, nonce: [UInt8])
    }

    enum Action {
        case send(WebSocketOutboundWriter, nonce: [UInt8])
        case protocolError
    }

    private var state = State.disconnected

    var isReady: Bool {
        if case .ready = state { return true }
        return false
    }

    /// The writer and the connection's nonce once authenticated.
    var ready: (outbound: WebSocketOutboundWriter, nonce: [UInt8])? {
        if case .ready(let outbound, let nonce) = state { return (outbound, nonce) }
        return nil
    }

    /// Any writer of the current connection (hello is sent before ready).
    var outbound: WebSocketOutboundWriter? {
        switch state {
        case .disconnected: nil
        case .awaitingChallenge(let outbound), .awaitingWelcome(let outbound, _), .ready(let outbound, _): outbound
        }
    }

    mutating func attached(_ outbound: WebSocketOutboundWriter) {
        state = .awaitingChallenge(outbound)
    }

    /// The server's challenge: answer with hello.
    mutating func challenge(nonce: [UInt8]) -> Action {
        guard case .awaitingChallenge(let outbound) = state, nonce.count == 32 else { return .protocolError }
        state = .awaitingWelcome(outbound, nonce: nonce)
        return .send(outbound, nonce: nonce)
    }

    /// The server accepted hello: send the joins.
    mutating func welcome() -> Action {
        guard case .awaitingWelcome(let outbound, let nonce) = state else { return .protocolError }
        state = .ready(outbound, nonce: nonce)
        return .send(outbound, nonce: nonce)
    }

    /// The connection ended; returns whether it had been authenticated.
    mutating func detached() -> Bool {
        defer { state = .disconnected }
        return isReady
    }
}
