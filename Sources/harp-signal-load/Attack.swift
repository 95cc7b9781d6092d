import Foundation
import HarpBasics
import SignalingProtocol
import Synchronization

/// The attacking side of an ``AttackRun``: plain threads over blocking loopback sockets, stopped by a flag; every
/// socket they open is closed by ``stop()``.
final class Attack: Sendable {
    private struct State {
        var descriptors: Set<Int32> = []
        var established = false
        var establishedAt: ContinuousClock.Instant?
        var workersDone = 0
        var accepted = 0
        var refused: [String: Int] = [:]
        var relayStart: (ContinuousClock.Instant, Double)?
    }

    private let run: AttackRun
    private let state = Mutex(State())
    private let stopping = Atomic<Bool>(false)
    private let started = ContinuousClock.now

    init(run: AttackRun) {
        self.run = run
    }

    private func source(_ index: Int) -> String { "127.0.0.\(2 + index % max(1, run.addresses))" }

    private func track(_ descriptor: Int32) { state.withLock { _ = $0.descriptors.insert(descriptor) } }

    private func establish() {
        state.withLock { state in
            if !state.established {
                state.established = true
                state.establishedAt = .now
            }
        }
    }

    private func count(_ code: String?) {
        state.withLock { state in
            if let code { state.refused[code, default: 0] += 1 } else { state.accepted += 1 }
        }
    }

    private func spawn(_ body: @escaping @Sendable () -> Void) {
        Thread.detachNewThread { body() }
    }

    func start() {
        switch run.kind {
        case .idle: spawn { self.idleFlood() }
        case .swarms: for device in 0..<run.count { spawn { self.swarmJoiner(device) } }
        case .proofs: spawn { self.proofGuesses() }
        case .relay: spawn { self.relayAbuse() }
        }
    }

    var establishedAfter: Double {
        state.withLock { $0.establishedAt.map { ($0 - started).secondsValue } ?? -1 }
    }

    func waitUntilEstablished(deadline: ContinuousClock.Instant) {
        while ContinuousClock.now < deadline, !state.withLock({ $0.established }) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        // Then hold: the probes run while the attack goes on.
        Thread.sleep(forTimeInterval: run.holdSeconds / 2)
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        let descriptors = state.withLock { state -> Set<Int32> in
            defer { state.descriptors = [] }
            return state.descriptors
        }
        for descriptor in descriptors { shutdown(descriptor, Int32(SHUT_RDWR)) }
        // Workers notice the flag or the shut-down socket within their socket timeout.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, state.withLock({ $0.workersDone }) < workerCount {
            Thread.sleep(forTimeInterval: 0.05)
        }
        for descriptor in descriptors { close(descriptor) }
    }

    private var workerCount: Int { run.kind == .swarms ? run.count : 1 }

    private func workerDone() { state.withLock { $0.workersDone += 1 } }

    func outcome() -> [String: Any] {
        state.withLock { state in
            var outcome: [String: Any] = ["attack_accepted": state.accepted, "attack_refused": state.refused]
            if let (start, bytes) = state.relayStart, let now = run.metric("harp_signal_relayed_bytes_total") {
                outcome["relay_mib_per_s"] = (now - bytes) / (ContinuousClock.now - start).secondsValue / 1_048_576
            }
            return outcome
        }
    }

    /// Holds `count` connections, every other one with half an HTTP request, opening new ones as the server closes
    /// old ones (a patient attacker), until stopped.
    private func idleFlood() {
        defer { workerDone() }
        var open: [Int32] = []
        var next = 0
        let partial = Array("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n".utf8)
        while !stopping.load(ordering: .relaxed) {
            // Drop the connections the server closed.
            open.removeAll { descriptor in
                var byte: UInt8 = 0
                let result = recv(descriptor, &byte, 1, Int32(MSG_DONTWAIT))
                guard result == 0 || (result < 0 && errno != EAGAIN && errno != EWOULDBLOCK) else { return false }
                state.withLock { _ = $0.descriptors.remove(descriptor) }
                close(descriptor)
                return true
            }
            // The first fill is as fast as it goes; later the closed ones come back at up to 1,000 a second.
            var budget = next < run.count ? run.count : 200
            while open.count < run.count, budget > 0, !stopping.load(ordering: .relaxed) {
                budget -= 1
                guard let descriptor = try? RawSocket.connect(port: run.port, from: source(next), timeout: 1) else {
                    count("connect-failed")
                    break
                }
                if next % 2 == 1 { try? RawSocket.send(descriptor, partial) }
                next += 1
                track(descriptor)
                open.append(descriptor)
            }
            if next >= run.count { establish() }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    /// One device from 127.0.0.2 joining `perDevice` fresh swarms at 18 joins per second (under the message rate).
    private func swarmJoiner(_ device: Int) {
        defer { workerDone() }
        do {
            var socket = try RawWebSocket(port: run.port, from: "127.0.0.2", timeout: 5)
            track(socket.descriptor)
            let key = Ed25519Signer()
            let nonce = try authenticate(&socket, device: key)
            for index in 0..<run.perDevice where !stopping.load(ordering: .relaxed) {
                let swarm = Ed25519Signer()
                let signature = try swarm.sign(
                    Proofs.joinMessage(nonce: nonce, device: key.publicKey, swarm: swarm.publicKey))
                let addresses = #"["127.0.0.2:\#(10000 + index)","[fd00::1]:\#(10000 + index)"]"#
                try socket.sendText(
                    #"{"type":"join","id":\#(index),"swarm":"\#(swarm.publicKey.hex)","signature":"\#(Hex.encode(signature))","addresses":\#(addresses)}"#
                )
                let answer = try socket.nextObject()
                count(answer["type"] as? String == "joined" ? nil : (answer["code"] as? String ?? "?"))
                Thread.sleep(forTimeInterval: 1.0 / 18)
            }
        } catch {
            count("device-failed")
        }
        let done = state.withLock { state -> Bool in
            state.accepted + state.refused.values.reduce(0, +) >= run.count * run.perDevice
        }
        if done { establish() }
        // Hold the connection (and its memberships) until stopped.
        while !stopping.load(ordering: .relaxed) { Thread.sleep(forTimeInterval: 0.05) }
    }

    private func authenticate(_ socket: inout RawWebSocket, device: Ed25519Signer) throws -> [UInt8] {
        try socket.sendText(#"{"type":"open","version":1}"#)
        let challenge = try socket.nextObject()
        guard let hex = challenge["nonce"] as? String, let nonce = Hex.decode(hex, count: 32) else {
            throw RawSocket.Failure(description: "no challenge: \(challenge)")
        }
        let signature = try device.sign(Proofs.helloMessage(nonce: nonce, device: device.publicKey))
        var hello =
            #"{"type":"hello","version":1,"device":"\#(device.publicKey.hex)","signature":"\#(Hex.encode(signature))""#
        if let joinKey = run.joinKey {
            hello +=
                #","joinProof":"\#(Hex.encode(Proofs.joinKeyProof(joinKey: joinKey, nonce: nonce, device: device.publicKey)))""#
        }
        try socket.sendText(hello + "}")
        let welcome = try socket.nextObject()
        guard welcome["type"] as? String == "welcome" else { throw RawSocket.Failure(description: "\(welcome)") }
        return nonce
    }

    /// `count` connections from 127.0.0.3 all get their challenge first; then each sends a wrong join-key proof.
    private func proofGuesses() {
        defer { workerDone() }
        var sockets: [(RawWebSocket, [UInt8])] = []
        for _ in 0..<run.count {
            guard var socket = try? RawWebSocket(port: run.port, from: "127.0.0.3", timeout: 5) else {
                count("connect-refused")
                continue
            }
            track(socket.descriptor)
            guard (try? socket.sendText(#"{"type":"open","version":1}"#)) != nil,
                let challenge = try? socket.nextObject(), let hex = challenge["nonce"] as? String,
                let nonce = Hex.decode(hex, count: 32)
            else {
                count("no-challenge")
                continue
            }
            sockets.append((socket, nonce))
        }
        for index in sockets.indices {
            let device = Ed25519Signer()
            let nonce = sockets[index].1
            let signature = (try? device.sign(Proofs.helloMessage(nonce: nonce, device: device.publicKey))) ?? []
            let guess = Proofs.joinKeyProof(
                joinKey: Array("guess \(index)".utf8), nonce: nonce, device: device.publicKey)
            try? sockets[index].0.sendText(
                #"{"type":"hello","version":1,"device":"\#(device.publicKey.hex)","signature":"\#(Hex.encode(signature))","joinProof":"\#(Hex.encode(guess))"}"#
            )
        }
        for index in sockets.indices {
            let answer = try? sockets[index].0.nextObject()
            count(answer?["type"] as? String == "welcome" ? nil : (answer?["code"] as? String ?? "closed"))
        }
        establish()
    }

    /// Two devices from 127.0.0.4 in a self-made swarm: A relays 60,000-byte frames to B as fast as it can while B
    /// sends frames with no payload back, until stopped.
    private func relayAbuse() {
        defer { workerDone() }
        do {
            let swarm = Ed25519Signer()
            var sockets: [(RawWebSocket, Ed25519Signer)] = []
            for _ in 0..<2 {
                var socket = try RawWebSocket(port: run.port, from: "127.0.0.4", timeout: 5)
                track(socket.descriptor)
                let device = Ed25519Signer()
                let nonce = try authenticate(&socket, device: device)
                let signature = try swarm.sign(
                    Proofs.joinMessage(nonce: nonce, device: device.publicKey, swarm: swarm.publicKey))
                try socket.sendText(
                    #"{"type":"join","id":1,"swarm":"\#(swarm.publicKey.hex)","signature":"\#(Hex.encode(signature))","addresses":[]}"#
                )
                _ = try socket.nextObject()
                sockets.append((socket, device))
            }
            var opener = sockets[0].0
            try opener.sendText(
                #"{"type":"relay-open","id":2,"swarm":"\#(swarm.publicKey.hex)","peer":"\#(sockets[1].1.publicKey.hex)"}"#
            )
            var stream: UInt32 = 0
            while stream == 0 {
                let message = try opener.nextObject()
                if message["type"] as? String == "relay-opened", let value = message["stream"] as? Int {
                    stream = UInt32(value)
                }
            }
            let header = withUnsafeBytes(of: stream.bigEndian) { Array($0) }
            let acceptor = sockets[1].0
            let bytesBefore = run.metric("harp_signal_relayed_bytes_total") ?? 0
            state.withLock { $0.relayStart = (.now, bytesBefore) }
            spawn {
                // B: drain whatever arrives, and flood empty frames back.
                let reader = acceptor
                while !self.stopping.load(ordering: .relaxed) {
                    var descriptor = pollfd(fd: reader.descriptor, events: Int16(POLLIN), revents: 0)
                    if poll(&descriptor, 1, 0) > 0 { _ = try? RawSocket.receive(reader.descriptor) }
                    for _ in 0..<100 { try? reader.sendBinary(header) }
                }
            }
            establish()
            let payload = header + [UInt8](repeating: 0x5a, count: 60_000)
            while !stopping.load(ordering: .relaxed) {
                var descriptor = pollfd(fd: opener.descriptor, events: Int16(POLLIN), revents: 0)
                if poll(&descriptor, 1, 0) > 0 { _ = try? RawSocket.receive(opener.descriptor) }
                guard (try? opener.sendBinary(payload)) != nil else { break }
            }
        } catch {
            count("relay-failed")
            establish()
        }
    }
}
