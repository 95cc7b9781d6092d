public import Foundation
public import SwarmKit

extension PeerSettings {
    /// The values given on the command line (nil: not given); each wins over the environment and config.toml.
    public struct Overrides: Sendable {
        public var signalURL: String?
        public var signalPin: String?
        public var listenHost: String?
        public var advertiseHost: String?

        public init(signalURL: String?, signalPin: String?, listenHost: String?, advertiseHost: String?) {
            self.signalURL = signalURL
            self.signalPin = signalPin
            self.listenHost = listenHost
            self.advertiseHost = advertiseHost
        }
    }

    /// The settings, each from `overrides`, else the environment (`HARP_SIGNAL`, `HARP_SIGNAL_PIN`, `HARP_LISTEN`,
    /// `HARP_ADVERTISE`), else config.toml. The join key comes from `$HARP_SIGNAL_JOIN_KEY` or the file config.toml
    /// names (never a flag: flags show in `ps`). Throws `UsageError` for a signaling URL that is not ws:// or wss://.
    public static func resolve(
        _ overrides: Overrides, config: HarpConfig,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> PeerSettings {
        func pick(_ flag: String?, _ name: String, _ file: String?) -> String? {
            if let flag, !flag.isEmpty { return flag }
            if let value = environment[name], !value.isEmpty { return value }
            if let file, !file.isEmpty { return file }
            return nil
        }
        var settings = PeerSettings()
        settings.signalURL = pick(overrides.signalURL, "HARP_SIGNAL", config.signalURL).map(Self.withDefaultPath)
        settings.signalPin = pick(overrides.signalPin, "HARP_SIGNAL_PIN", config.signalPin)
        if let key = environment["HARP_SIGNAL_JOIN_KEY"], !key.isEmpty {
            settings.joinKey = Array(key.utf8)
        } else {
            settings.joinKey = try config.joinKey()
        }
        let listen = pick(overrides.listenHost, "HARP_LISTEN", config.listen) ?? "0.0.0.0"
        guard let (host, port) = splitListen(listen) else {
            throw UsageError(
                description: "the peer listen address must be HOST or HOST:PORT (IPv6 as [ADDR]:PORT), not \(listen)")
        }
        settings.listenHost = host
        settings.listenPort = port
        settings.advertiseHost = pick(overrides.advertiseHost, "HARP_ADVERTISE", config.advertise)
        if let url = settings.signalURL, let problem = signalURLProblem(url) {
            throw UsageError(description: problem)
        }
        return settings
    }

    /// A listen address: `HOST`, `HOST:PORT`, `[IPV6]:PORT` or a bare IPv6 address; port 0 (or none) lets the system
    /// choose. Nil for an empty host or a port outside 0...65535.
    public static func splitListen(_ text: String) -> (host: String, port: Int)? {
        var host = text
        var port = 0
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else { return nil }
                port = value
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            guard let value = Int(text[text.index(after: colon)...]) else { return nil }
            port = value
        }
        guard !host.isEmpty, (0...65535).contains(port) else { return nil }
        return (host, port)
    }

    /// What is wrong with `url` as the signaling server's address, or nil: it must be a ws:// or wss:// URL with a
    /// host, and the host may not be an IPv6 address in brackets, which the WebSocket client (swift-websocket's
    /// `WebSocketClient`, whose URL parser ends the host at the first colon) cannot connect to: without this check
    /// such a URL retried its connection for ever without saying why.
    public static func signalURLProblem(_ url: String) -> String? {
        guard url.hasPrefix("ws://") || url.hasPrefix("wss://"), let host = URL(string: url)?.host else {
            return "the signaling server must be a ws:// or wss:// URL, not \(url)"
        }
        // Foundation gives an IPv6 address without its brackets; a host name has no colon.
        if host.contains(":") {
            return "the signaling server's URL names an IPv6 address (\(url)), which the WebSocket client cannot "
                + "connect to: use a host name that resolves to it"
        }
        return nil
    }

    /// The swarm options every swarm of a command starts from: the upload limit from `flag`, else
    /// `$HARP_UPLOAD_LIMIT`, else config.toml.
    public static func swarmOptions(
        uploadLimit flag: String?, config: HarpConfig,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> Swarm.Options {
        var options = Swarm.Options()
        let fromEnvironment = environment["HARP_UPLOAD_LIMIT"].flatMap { $0.isEmpty ? nil : $0 }
        if let text = flag ?? fromEnvironment ?? config.uploadLimit {
            guard let rate = parseRate(text) else {
                throw UsageError(description: "the upload limit must be a rate like 40M, not \(text)")
            }
            options.uploadLimit = rate
        }
        return options
    }

    /// A signaling URL given without a path (`ws://host:7447`) means the server's WebSocket endpoint, `/v1/ws`.
    public static func withDefaultPath(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.host != nil,
            components.path.isEmpty || components.path == "/"
        else { return url }
        components.path = "/v1/ws"
        return components.string ?? url
    }

    /// "500000", "40M", "1.5G" (binary multiples) → bytes.
    public static func parseRate(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let last = trimmed.last else { return nil }
        let multipliers: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824]
        let multiplier = multipliers[Character(last.uppercased())]
        let number = multiplier == nil ? trimmed : String(trimmed.dropLast())
        guard let value = Double(number), value > 0 else { return nil }
        return Int(value * (multiplier ?? 1))
    }
}

/// A usage problem found while running (the CLI exits with code 2).
public struct UsageError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(description: String) {
        self.description = description
    }
}
