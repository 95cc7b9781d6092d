import Foundation
import Testing

/// The swarm off the happy path, with real processes: peers that come late or leave early.
@Suite("Swarm faults (real processes)", .serialized)
struct SwarmFaultTests {
    /// A seeder that joins after the fetcher began (from the web seed alone) serves what the fetcher lacks: the server
    /// sends a small part of the file, not all of it.
    @Test func aSeederThatJoinsLateServesWhatTheFetcherLacks() async throws {
        // 2 MB/s from DevCloud: the 48 MiB file would take about 25 s from the server alone, half of it 12 s, which
        // leaves a slow machine time to start the seeder.
        let bed = try await Testbed(cloudArguments: ["--egress-limit", "2000000"])
        defer { bed.shutdown() }
        let size = 48 << 20
        let original = try bed.makeFile("f.bin", size: size)
        // The origin uploads with a signaling server (sidecar and manifest published, provenance recorded), then
        // leaves: the fetcher starts with a swarm of nobody.
        let put = try await bed.run("origin", ["put", original, "/", "--json"])
        try #require(put.process.terminationStatus == 0, "\(put.stderr)")
        let before = try await bed.cloudBytesSent()

        let fetcher = try bed.start("fetcher", ["get", "/f.bin", "-o", "copy/", "--json"])
        try #require(await fetcher.waitForProgress(atLeast: 4 << 20), "\(fetcher.stderr.suffix(2000))")
        // The origin comes back as a seeder of the folder it uploaded from.
        let seeder = try bed.start("origin", ["seed", bed.directory, "--remote", "/", "--json"])
        let seeding = await seeder.waitForLine(timeout: 60) { $0.contains("\"event\":\"seeding\"") }
        try #require(seeding != nil, "\(seeder.output) \(seeder.stderr)")

        #expect(await fetcher.wait() == 0, "\(fetcher.stderr.suffix(2000))")
        #expect(try sameContents(original, bed.home("fetcher") + "/copy/f.bin"))
        let done = try #require(fileDone(fetcher))
        let fromServer = try await bed.cloudBytesSent() - before
        print(
            "late seeder: the server sent \(String(format: "%.3f", Double(fromServer) / Double(size))) F, peers "
                + "\(String(format: "%.3f", Double(int64(done["bytesFromPeers"])) / Double(size))) F")
        #expect(
            fromServer < Int64(size / 2),
            "the server sent \(Double(fromServer) / Double(size)) of the file with a full seeder connected: \(done)")
        #expect(int64(done["bytesFromPeers"]) > Int64(size / 2), "\(done)")
    }

    /// Uneven uplinks, and a fetcher killed halfway: the others finish with the right bytes. What the server sends
    /// them is printed, not asserted: on loopback it was 0 to 4.8 MB with and without re-offering the chunks that only
    /// the killed peer held (`SuperSeederDepartureTests`), so this set-up does not isolate that fault; the swarm
    /// simulator of issue 14 is where that figure belongs.
    @Test func aFetcherKilledHalfwayLeavesTheOthersToFinish() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 32 << 20
        let original = try bed.makeFile("f.bin", size: size)
        let put = try await bed.run("origin", ["put", original, "/", "--json"])
        try #require(put.process.terminationStatus == 0, "\(put.stderr)")
        let seeder = try bed.start(
            "origin", ["seed", bed.directory, "--remote", "/", "--json", "--upload-limit", "4M"])
        try #require(
            await seeder.waitForLine(timeout: 60) { $0.contains("\"event\":\"seeding\"") } != nil,
            "\(seeder.output) \(seeder.stderr)")

        let leaver = try bed.start("leaver", ["get", "/f.bin", "-o", "copy/", "--json"])
        let slow = try bed.start("slow", ["get", "/f.bin", "-o", "copy/", "--json", "--upload-limit", "512K"])
        let steady = try bed.start("steady", ["get", "/f.bin", "-o", "copy/", "--json"])
        try #require(await leaver.waitForProgress(atLeast: Int64(size / 2)), "\(leaver.stderr.suffix(2000))")
        leaver.signal(SIGKILL)
        await leaver.wait()

        for (name, fetcher) in [("slow", slow), ("steady", steady)] {
            #expect(await fetcher.wait(timeout: 120) == 0, "\(name): \(fetcher.stderr.suffix(2000))")
            #expect(try sameContents(original, bed.home(name) + "/copy/f.bin"), "\(name)'s copy differs")
            let done = try #require(fileDone(fetcher))
            print(
                "\(name): \(int64(done["bytesFromServer"])) bytes from the server, \(int64(done["bytesFromPeers"])) from peers"
            )
        }
    }
}
