public import SignalingClient
internal import SignalingProtocol

/// How peers can reach this process, as far as it knows (`harp-cli status`, docs/nat.md): its listening port, the
/// router's port mapping, where the signaling server saw a connection from the listening port come from, and what
/// two observations said of the NAT.
public struct Reachability: Sendable, Equatable {
    public var listenPort: Int
    /// `HOST:PORT` of the router's mapping (UPnP, NAT-PMP or PCP), if one was granted.
    public var mapped: String?
    /// `HOST:PORT` the server saw the listening port's connection come from (the reflexive candidate), if it said.
    public var reflexive: String?
    public var nat: SignalClient.NATMapping?

    public init(listenPort: Int, mapped: String?, reflexive: String?, nat: SignalClient.NATMapping?) {
        self.listenPort = listenPort
        self.mapped = mapped
        self.reflexive = reflexive
        self.nat = nat
    }

    /// The status file's object.
    public var json: [String: Any] {
        var object: [String: Any] = ["listenPort": listenPort]
        if let mapped { object["mapped"] = mapped }
        if let reflexive { object["reflexive"] = reflexive }
        switch nat {
        case .endpointIndependent: object["nat"] = "endpoint-independent"
        case .dependent(let ports):
            object["nat"] = "symmetric"
            object["natPorts"] = ports.map(Int.init)
        case nil: break
        }
        return object
    }

    /// One line for `harp-cli status`, from the status file's object; nil when it says nothing.
    public static func summary(_ object: [String: Any]) -> String? {
        guard let port = object["listenPort"] as? Int, port != 0 else { return nil }
        var parts = ["peer port \(port)"]
        if let mapped = object["mapped"] as? String { parts.append("mapped at \(mapped)") }
        if let reflexive = object["reflexive"] as? String {
            parts.append("seen by the signaling server as \(reflexive)")
        }
        switch object["nat"] as? String {
        case "symmetric":
            let seen = (object["natPorts"] as? [Int] ?? []).map(String.init).joined(separator: " and ")
            let help = object["mapped"] == nil ? "; a port mapping on the router would let every peer in" : ""
            parts.append(
                "NAT symmetric (port \(port) seen as \(seen) from two server ports): peers behind NATs reach this "
                    + "machine through a spray punch if their NAT keeps one port for every destination, else only "
                    + "through the relay\(help)")
        case "endpoint-independent":
            parts.append("NAT endpoint-independent (a punch can reach it)")
        default:
            break
        }
        return parts.joined(separator: ", ")
    }
}

extension SwarmNode {
    /// What this process knows of how peers reach it.
    public func reachability() async -> Reachability {
        let signal = self.signal
        // As the joins announce it.
        let reflexive = await signal?.reflexiveCandidate(listenPort: UInt16(clamping: listenPort))
        return Reachability(
            listenPort: listenPort, mapped: mapped?.hostAndPort, reflexive: reflexive?.hostAndPort,
            nat: await signal?.natMapping)
    }
}
