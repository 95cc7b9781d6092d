import SignalingProtocol

/// The lifecycle of one server-side connection: awaiting open → challenge sent → authenticated → closed. Every decision about
/// what a message may do in the current state is made here; the session carries out the returned action.
struct SessionStateMachine {
    private enum State {
        case awaitingOpen(nonce: [UInt8])
        case awaitingHello(nonce: [UInt8])
        case authenticated(nonce: [UInt8], handle: SessionHandle)
        case closed
    }

    enum OpenAction {
        /// Send the challenge with this nonce.
        case challenge([UInt8])
        /// A client of another protocol version: refuse without counting a failure.
        case refuse(SignalErrorCode)
        /// A second open, or after close.
        case protocolViolation
    }

    enum HelloAction {
        /// Proofs hold: the session is authenticated; register the handle with the hub.
        case accept(SessionHandle)
        /// Count a failure for the address, answer with the code and close.
        case refuse(SignalErrorCode)
        /// Not acceptable in this state (a second hello, or after close): close without counting.
        case protocolViolation
    }

    enum JoinAction {
        case accept(SessionHandle)
        case refuse(SignalErrorCode, countsAsFailure: Bool)
        case protocolViolation
    }

    enum RequestAction {
        case proceed(SessionHandle)
        case protocolViolation
    }

    enum DeadlineAction {
        case none
        case close
    }

    private var state: State
    private let joinKey: [UInt8]?
    private let maxAddresses: Int
    private let maxAddressLength: Int

    init(nonce: [UInt8], configuration: SignalServerConfiguration) {
        state = .awaitingOpen(nonce: nonce)
        joinKey = configuration.joinKey
        maxAddresses = configuration.maxAddresses
        maxAddressLength = configuration.maxAddressLength
    }

    /// The handle once authenticated (for cleanup).
    var handle: SessionHandle? {
        if case .authenticated(_, let handle) = state { return handle }
        return nil
    }

    /// The client's `open`: the server may now speak, starting with the challenge.
    mutating func open(_ open: Message.Open) -> OpenAction {
        guard case .awaitingOpen(let nonce) = state else { return .protocolViolation }
        guard open.version == Signaling.protocolVersion else { return .refuse(.unsupportedVersion) }
        state = .awaitingHello(nonce: nonce)
        return .challenge(nonce)
    }

    /// Checks `hello`: the device signature over the challenge, then the join-key proof when one is configured.
    /// On success the session becomes authenticated with the handle `makeHandle` builds, in the same step, so the
    /// hello deadline cannot fall between the check and the transition.
    mutating func hello(_ hello: Message.Hello, makeHandle: (DeviceID) -> SessionHandle) -> HelloAction {
        guard case .awaitingHello(let nonce) = state else { return .protocolViolation }
        guard hello.version == Signaling.protocolVersion else { return .refuse(.unsupportedVersion) }
        let message = Proofs.helloMessage(nonce: nonce, device: hello.device)
        guard Proofs.verify(signature: hello.signature.bytes, of: message, by: hello.device) else {
            return .refuse(.badProof)
        }
        if let joinKey {
            guard let proof = hello.joinProof?.bytes,
                Proofs.checkJoinKeyProof(proof, joinKey: joinKey, nonce: nonce, device: hello.device)
            else { return .refuse(.badJoinKey) }
        }
        let handle = makeHandle(hello.device)
        state = .authenticated(nonce: nonce, handle: handle)
        return .accept(handle)
    }

    /// Checks `join`: the swarm-key signature over the challenge, the device key and the swarm id; the addresses.
    func join(_ join: Message.Join) -> JoinAction {
        guard case .authenticated(let nonce, let handle) = state else { return .protocolViolation }
        let message = Proofs.joinMessage(nonce: nonce, device: handle.device, swarm: join.swarm)
        guard Proofs.verify(signature: join.signature.bytes, of: message, by: join.swarm) else {
            return .refuse(.badSwarmProof, countsAsFailure: true)
        }
        guard join.addresses.count <= maxAddresses,
            join.addresses.allSatisfy({ !$0.isEmpty && $0.utf8.count <= maxAddressLength })
        else { return .refuse(.badAddresses, countsAsFailure: false) }
        return .accept(handle)
    }

    /// `leave`, `relay-open`, `relay-close` and relay data need an authenticated session.
    func request() -> RequestAction {
        guard case .authenticated(_, let handle) = state else { return .protocolViolation }
        return .proceed(handle)
    }

    /// The hello deadline passed: a session still awaiting open or hello closes.
    mutating func deadline() -> DeadlineAction {
        switch state {
        case .awaitingOpen, .awaitingHello:
            state = .closed
            return .close
        case .authenticated, .closed:
            return .none
        }
    }

    mutating func close() {
        state = .closed
    }
}
