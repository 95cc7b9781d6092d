import Foundation
import Glibc
import HarpBasics
import SignalingProtocol

/// A minimal blocking WebSocket client (RFC 6455: the upgrade, masked text frames out, unmasked frames in) over
/// ``RawSocket``, so the legitimate probe can come from its own loopback address. It answers pings; it is used only
/// for the few steps of one join.
struct RawWebSocket {
    let descriptor: Int32
    private var pending: [UInt8] = []

    init(port: Int, from source: String, timeout: Double) throws {
        descriptor = try RawSocket.connect(port: port, from: source, timeout: timeout)
        let request =
            "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        try RawSocket.send(descriptor, Array(request.utf8))
        while true {
            let chunk = try RawSocket.receive(descriptor)
            guard !chunk.isEmpty else { throw RawSocket.Failure(description: "closed during the upgrade") }
            pending += chunk
            if let end = Self.find([13, 10, 13, 10], in: pending) {
                let head = String(decoding: pending[..<end], as: UTF8.self)
                guard head.hasPrefix("HTTP/1.1 101") else {
                    throw RawSocket.Failure(description: "upgrade refused: \(head.prefix(40))")
                }
                pending.removeFirst(end + 4)
                return
            }
        }
    }

    func close() { Glibc.close(descriptor) }

    func sendText(_ text: String) throws {
        try sendFrame(opcode: 0x1, Array(text.utf8))
    }

    func sendBinary(_ payload: [UInt8]) throws {
        try sendFrame(opcode: 0x2, payload)
    }

    private func sendFrame(opcode: UInt8, _ payload: [UInt8]) throws {
        precondition(payload.count < 65536, "frames of this client stay under 64 KiB")
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame.append(0x80 | 126)
            frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        for (index, byte) in payload.enumerated() { frame.append(byte ^ mask[index % 4]) }
        try RawSocket.send(descriptor, frame)
    }

    /// The next text message as a JSON object (pings answered, other frames skipped).
    mutating func nextObject() throws -> [String: Any] {
        while true {
            let (opcode, payload) = try nextFrame()
            switch opcode {
            case 0x1:
                if let object = try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] {
                    return object
                }
            case 0x8:
                throw RawSocket.Failure(description: "the server closed the connection")
            case 0x9:
                try sendFrame(opcode: 0xA, payload)
            default:
                continue
            }
        }
    }

    private mutating func nextFrame() throws -> (UInt8, [UInt8]) {
        while true {
            if pending.count >= 2 {
                var length = Int(pending[1] & 0x7f)
                var offset = 2
                if length == 126, pending.count >= 4 {
                    length = Int(pending[2]) << 8 | Int(pending[3])
                    offset = 4
                } else if length == 127, pending.count >= 10 {
                    length = pending[2..<10].reduce(0) { $0 << 8 | Int($1) }
                    offset = 10
                }
                if length < 126 || offset > 2, pending.count >= offset + length {
                    let frame = (pending[0] & 0x0f, Array(pending[offset..<offset + length]))
                    pending.removeFirst(offset + length)
                    return frame
                }
            }
            let chunk = try RawSocket.receive(descriptor)
            guard !chunk.isEmpty else { throw RawSocket.Failure(description: "connection closed") }
            pending += chunk
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where Array(haystack[index..<index + needle.count]) == needle {
            return index
        }
        return nil
    }

    /// A whole legitimate session: connect, prove a fresh device key (and the join key), join a fresh swarm.
    /// Returns the seconds from the TCP connect to `joined`.
    static func timedJoin(port: Int, from source: String, joinKey: [UInt8]?, timeout: Double = 5) throws -> Double {
        let start = ContinuousClock.now
        var socket = try RawWebSocket(port: port, from: source, timeout: timeout)
        defer { socket.close() }
        let device = Ed25519Signer()
        let swarm = Ed25519Signer()
        try socket.sendText(#"{"type":"open","version":1}"#)
        let challenge = try socket.nextObject()
        guard challenge["type"] as? String == "challenge", let hex = challenge["nonce"] as? String,
            let nonce = Hex.decode(hex, count: 32)
        else { throw RawSocket.Failure(description: "no challenge: \(challenge)") }
        let signature = try device.sign(Proofs.helloMessage(nonce: nonce, device: device.publicKey))
        var hello =
            #"{"type":"hello","version":1,"device":"\#(device.publicKey.hex)","signature":"\#(Hex.encode(signature))""#
        if let joinKey {
            let proof = Proofs.joinKeyProof(joinKey: joinKey, nonce: nonce, device: device.publicKey)
            hello += #","joinProof":"\#(Hex.encode(proof))""#
        }
        try socket.sendText(hello + "}")
        let welcome = try socket.nextObject()
        guard welcome["type"] as? String == "welcome" else {
            throw RawSocket.Failure(description: "no welcome: \(welcome)")
        }
        let joinSignature = try swarm.sign(
            Proofs.joinMessage(nonce: nonce, device: device.publicKey, swarm: swarm.publicKey))
        try socket.sendText(
            #"{"type":"join","id":1,"swarm":"\#(swarm.publicKey.hex)","signature":"\#(Hex.encode(joinSignature))","addresses":[]}"#
        )
        let joined = try socket.nextObject()
        guard joined["type"] as? String == "joined" else {
            throw RawSocket.Failure(description: "no joined: \(joined)")
        }
        return (ContinuousClock.now - start).secondsValue
    }
}
