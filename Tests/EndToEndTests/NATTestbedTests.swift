import Foundation
import Testing

/// The NAT testbed (bench/nat/run.sh, docs/nat.md) as a test: network namespaces, iptables NAT routers, miniupnpd.
/// Runs only as root with the tools installed (`ip`, `iptables`, `miniupnpd`, `upnpc`, `python3`, `curl`; `scripts/test`
/// installs them as root) on a machine that lets it make network namespaces; skipped otherwise, and when
/// `HARP_NAT_E2E=0`. Its namespaces have their own prefix, so a benchmark run at the same time
/// is not disturbed.
@Suite("NAT testbed", .serialized)
struct NATTestbedTests {
    static var canRun: Bool {
        guard getuid() == 0, ProcessInfo.processInfo.environment["HARP_NAT_E2E"] != "0" else { return false }
        let paths = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        let tools = ["ip", "iptables", "miniupnpd", "upnpc", "python3", "curl", "tc"].allSatisfy { tool in
            paths.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
        }
        return tools && canMakeNamespaces
    }

    /// Whether this machine lets root make a network namespace (a container may not): one is made and removed.
    static var canMakeNamespaces: Bool {
        let name = "hneprobe\(getpid())"
        func ip(_ arguments: String...) -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["ip"] + arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
        guard ip("netns", "add", name) else { return false }
        return ip("netns", "del", name)
    }

    /// Runs bench/nat/run.sh for `pairs`; its output and its result rows.
    static func run(
        pairs: String, environment extra: [String: String] = [:]
    ) async throws -> (output: String, rows: [[String: Any]]) {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("harp-nat-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let process = Process()
        // Through python3, which clears the signal mask first: this process's threads block SIGTERM, children
        // inherit the mask, and the script and the harp-cli processes it stops with SIGTERM would ignore it.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); "
                + "os.execv('/bin/bash', ['bash', sys.argv[1]])",
            repository.appendingPathComponent("bench/nat/run.sh").path,
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["HARP_CLI"] = HarpBinary.url.path
        environment["PAIRS"] = pairs
        environment["PREFIX"] = "hne\(getpid() % 10000)"
        environment["WORK"] = work.path
        environment["INSTALL"] = "0"
        environment["SIZE_MIB"] = "4"
        environment["INBOUND"] = "drop"
        environment.merge(extra) { $1 }
        process.environment = environment
        let log = work.appendingPathExtension("log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        // Waited for without blocking a thread: the cooperative pool has as many threads as cores, and a minute's
        // blocking wait starves every other test running meanwhile.
        let launched = await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
            process.terminationHandler = { _ in done.resume(returning: true) }
            do { try process.run() } catch { done.resume(returning: false) }
        }
        try #require(launched, "could not start bench/nat/run.sh")
        try handle.close()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "bench/nat/run.sh failed:\n\(output)")
        let results = try String(contentsOf: work.appendingPathComponent("results.jsonl"), encoding: .utf8)
        let rows = results.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return (output, rows)
    }

    @Test(
        "two endpoint-independent NATs punch through (also one that changes the port), a UPnP and a NAT-PMP router map, a symmetric NAT spray-punches to an endpoint-independent one and relays to another symmetric one",
        .enabled(if: canRun), .timeLimit(.minutes(10)))
    func pairs() async throws {
        let (output, rows) = try await Self.run(pairs: "eim1:eim2 eim1:eimx upnp:eim2 pmp:eim2 eim1:sym1 sym1:sym2")
        func row(_ seeder: String, _ fetcher: String) -> [String: Any]? {
            rows.first { $0["seeder"] as? String == seeder && $0["fetcher"] as? String == fetcher }
        }
        let punched = try #require(row("eim1", "eim2"), "no eim1:eim2 result:\n\(output)")
        #expect(punched["verified"] as? Bool == true)
        #expect(punched["way"] as? String == "direct")
        #expect((punched["how"] as? String)?.hasPrefix("punched") == true)
        #expect(punched["sprayPunches"] as? Int == 0, "\(output)")
        // The fetcher's NAT maps its peer port to another number: the probe finds it, the punch aims at it.
        let changed = try #require(row("eim1", "eimx"), "no eim1:eimx result:\n\(output)")
        #expect(changed["verified"] as? Bool == true)
        #expect(changed["way"] as? String == "direct", "\(output)")
        #expect((changed["how"] as? String)?.hasPrefix("punched") == true, "\(output)")
        let mapped = try #require(row("upnp", "eim2"))
        #expect(mapped["way"] as? String == "direct")
        #expect((mapped["how"] as? String)?.hasPrefix("mapped") == true)
        // A router with NAT-PMP only: the mapping comes from NAT-PMP, and is deleted when the seeder exits.
        let natPMP = try #require(row("pmp", "eim2"))
        #expect(natPMP["way"] as? String == "direct", "\(output)")
        #expect((natPMP["how"] as? String)?.hasPrefix("mapped") == true, "\(output)")
        #expect(natPMP["routerMappings"] as? [Int] == [1, 0], "\(output)")
        // The fetcher behind the symmetric NAT (it saw its peer port as two ports from the server's two observation
        // ports) asks for a spray punch: many flows to the seeder's reflexive address, which the seeder's dials of
        // random ports find (docs/nat.md, "Spray punching"). Nothing crosses the relay.
        let sprayed = try #require(row("eim1", "sym1"))
        #expect(sprayed["verified"] as? Bool == true)
        #expect(sprayed["way"] as? String == "direct", "\(output)")
        #expect(sprayed["how"] as? String == "punched", "\(output)")
        #expect(sprayed["sprayPunches"] as? Int == 1, "\(output)")
        #expect(sprayed["punchSuccesses"] as? Int == 1, "\(output)")
        // Two symmetric NATs: no port to aim at on either side, so the relay, and the fetcher says why; no punch of
        // either kind is asked for (the server refuses a spray towards a peer without a reflexive candidate).
        let relayed = try #require(row("sym1", "sym2"))
        #expect(relayed["verified"] as? Bool == true)
        #expect(relayed["way"] as? String == "relayed")
        #expect((relayed["why"] as? String)?.contains("this side's NAT is symmetric") == true, "\(output)")
        #expect(relayed["sprayPunches"] as? Int == 0, "\(output)")
    }

    /// Relay, then upgrade (docs/nat.md): two endpoint-independent NATs that cannot reach each other for the first
    /// 8 s of the fetch start on the relay; the background punch then moves them to a punched connection, the file
    /// arrives whole, and only part of it crossed the relay.
    @Test(
        "a pair that starts on the relay moves to a punched connection", .enabled(if: canRun), .timeLimit(.minutes(10)))
    func relayThenUpgrade() async throws {
        let (output, rows) = try await Self.run(
            pairs: "eim1:eim2:8", environment: ["SIZE_MIB": "24", "RATE_MBIT": "12"])
        let upgraded = try #require(rows.first, "no result:\n\(output)")
        #expect(upgraded["verified"] as? Bool == true, "\(output)")
        #expect(upgraded["lastPath"] as? String == "punched", "\(output)")
        let how = (upgraded["how"] as? String) ?? ""
        #expect(how.contains("relayed") && how.contains("punched"), "\(output)")
        let relayedFraction = try #require(upgraded["relayedFraction"] as? Double)
        #expect(relayedFraction > 0.01 && relayedFraction < 0.9, "\(output)")
        #expect((upgraded["punchSuccesses"] as? Int ?? 0) >= 1, "\(output)")
    }
}
