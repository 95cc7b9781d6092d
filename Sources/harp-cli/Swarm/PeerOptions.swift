import ArgumentParser
import Foundation
import HarpClient
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
            "Local address to accept peer connections on, HOST or HOST:PORT; one port serves every file (default: $HARP_LISTEN, else all addresses, a free port).",
            valueName: "host[:port]"))
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

    @Flag(
        name: .customLong("no-port-mapping"),
        help: ArgumentHelp(
            "Do not ask the router (UPnP IGD) to forward a port to this peer; peers then reach it directly only when it is reachable anyway, else through the signaling server's relay."
        ))
    var noPortMapping = false

    @Option(name: .customLong("debug-corrupt-every"), help: .hidden)
    var corruptEvery: Int = 0

    /// The settings, each from the flag, else the environment, else config.toml (see `PeerSettings.resolve`).
    func settings(config: HarpConfig) throws -> PeerSettings {
        var settings = try PeerSettings.resolve(
            .init(signalURL: signalURL, signalPin: signalPin, listenHost: listenHost, advertiseHost: advertiseHost),
            config: config)
        settings.portMapping = !noPortMapping
        return settings
    }

    /// The swarm options these flags (and config.toml) set: every swarm of the command starts from them.
    func swarmOptions(config: HarpConfig) throws -> Swarm.Options {
        var options = try PeerSettings.swarmOptions(uploadLimit: uploadLimit, config: config)
        options.corruptEveryNthUpload = corruptEvery
        return options
    }

    func validateURL() throws {
        if let uploadLimit, PeerSettings.parseRate(uploadLimit) == nil {
            throw ValidationError("--upload-limit must be a positive number of bytes per second, like 40M")
        }
        guard let url = signalURL else { return }
        if let problem = PeerSettings.signalURLProblem(url) {
            throw ValidationError("--signal: \(problem)")
        }
    }
}

extension ConfigOptions {
    /// This installation's device key (created on first use, 0600).
    func deviceIdentity() throws -> DeviceIdentity {
        try DeviceIdentity.loadOrCreate(at: store.directory.appendingPathComponent("device.key").path)
    }
}
