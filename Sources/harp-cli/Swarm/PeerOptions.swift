import ArgumentParser
import Foundation
import SwarmKit

/// How a command that meets peers finds them. Each value comes from the flag, else the environment.
struct PeerOptions: ParsableArguments {
    @Option(
        name: .customLong("signal"),
        help: ArgumentHelp(
            "Signaling server, ws:// or wss://…/v1/ws (default: $HARP_SIGNAL, then config.toml). Without one there is no swarm.",
            valueName: "url"))
    var signalURL: String?

    @Option(
        name: .customLong("signal-pin"),
        help: ArgumentHelp(
            "SHA-256 fingerprint (hex) of a self-signed signaling server's certificate (default: $HARP_SIGNAL_PIN).",
            valueName: "hex"))
    var signalPin: String?

    @Option(
        name: .customLong("listen"),
        help: ArgumentHelp(
            "Local address to accept peer connections on (default: $HARP_LISTEN, else all addresses).",
            valueName: "host"))
    var listenHost: String?

    @Option(
        name: .customLong("advertise"),
        help: ArgumentHelp(
            "Address other peers should dial (default: $HARP_ADVERTISE, else the local address of the route to the signaling server).",
            valueName: "host"))
    var advertiseHost: String?

    @Option(
        name: .customLong("upload-limit"),
        help: ArgumentHelp(
            "Most bytes per second sent to peers per file, with an optional K, M or G suffix (default: $HARP_UPLOAD_LIMIT, else none).",
            valueName: "rate"))
    var uploadLimit: String?

    @Option(name: .customLong("debug-corrupt-every"), help: .hidden)
    var corruptEvery: Int = 0

    /// The settings, each from the flag, else the environment, else config.toml. The join key comes from
    /// $HARP_SIGNAL_JOIN_KEY or the file config.toml names (never a flag: flags show in `ps`).
    func settings(config: HarpConfig) throws -> PeerSettings {
        let environment = ProcessInfo.processInfo.environment
        func pick(_ flag: String?, _ name: String, _ file: String?) -> String? {
            if let flag, !flag.isEmpty { return flag }
            if let value = environment[name], !value.isEmpty { return value }
            if let file, !file.isEmpty { return file }
            return nil
        }
        var settings = PeerSettings()
        settings.signalURL = pick(signalURL, "HARP_SIGNAL", config.signalURL).map(Self.withDefaultPath)
        settings.signalPin = pick(signalPin, "HARP_SIGNAL_PIN", config.signalPin)
        if let key = environment["HARP_SIGNAL_JOIN_KEY"], !key.isEmpty {
            settings.joinKey = Array(key.utf8)
        } else {
            settings.joinKey = try config.joinKey()
        }
        settings.listenHost = pick(listenHost, "HARP_LISTEN", config.listen) ?? "0.0.0.0"
        settings.advertiseHost = pick(advertiseHost, "HARP_ADVERTISE", config.advertise)
        if let url = settings.signalURL,
            !(url.hasPrefix("ws://") || url.hasPrefix("wss://")) || URL(string: url)?.host == nil
        {
            throw UsageError(description: "the signaling server must be a ws:// or wss:// URL, not \(url)")
        }
        return settings
    }

    /// The swarm options these flags (and config.toml) set: every swarm of the command starts from them.
    func swarmOptions(config: HarpConfig) throws -> Swarm.Options {
        var options = Swarm.Options()
        let fromEnvironment = ProcessInfo.processInfo.environment["HARP_UPLOAD_LIMIT"].flatMap { $0.isEmpty ? nil : $0 }
        let text = uploadLimit ?? fromEnvironment ?? config.uploadLimit
        if let text {
            guard let rate = Self.parseRate(text) else {
                throw UsageError(description: "the upload limit must be a rate like 40M, not \(text)")
            }
            options.uploadLimit = rate
        }
        options.corruptEveryNthUpload = corruptEvery
        return options
    }

    /// A signaling URL given without a path (`ws://host:7447`) means the server's WebSocket endpoint, `/v1/ws`.
    static func withDefaultPath(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.host != nil,
            components.path.isEmpty || components.path == "/"
        else { return url }
        components.path = "/v1/ws"
        return components.string ?? url
    }

    /// "500000", "40M", "1.5G" (binary multiples) → bytes.
    static func parseRate(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let last = trimmed.last else { return nil }
        let multipliers: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824]
        let multiplier = multipliers[Character(last.uppercased())]
        let number = multiplier == nil ? trimmed : String(trimmed.dropLast())
        guard let value = Double(number), value > 0 else { return nil }
        return Int(value * (multiplier ?? 1))
    }

    func validateURL() throws {
        if let uploadLimit, Self.parseRate(uploadLimit) == nil {
            throw ValidationError("--upload-limit must be a positive number of bytes per second, like 40M")
        }
        guard let url = signalURL else { return }
        guard url.hasPrefix("ws://") || url.hasPrefix("wss://"), URL(string: url)?.host != nil else {
            throw ValidationError("--signal must be a ws:// or wss:// URL, not \(url)")
        }
    }
}

extension ConfigOptions {
    /// This installation's device key (created on first use, 0600).
    func deviceIdentity() throws -> DeviceIdentity {
        try DeviceIdentity.loadOrCreate(at: store.directory.appendingPathComponent("device.key").path)
    }
}
