// harp-log-bench: the version log's figures. Builds an in-memory log of 1,000,000 entries holding a lineage of 1,000
// versions spread through it, then prints the append rate, the proof bundle's size and the verify time (median of 5).
// Run in release: swift build -c release --product harp-log-bench --scratch-path .build-release
// With HARP_LOG_BENCH_OUT=DIR it also writes the bundle (DIR/bundle.json) and its policy (DIR/policy), for timing
// `harp-cli verify-proof`. `device` and `append` measure a running server instead (HTTPAppend.swift, bench/proof/run.sh).
import ChunkStore
import Crypto
import Foundation
import VersionLog

let totalEntries = 1_000_000
let lineageVersions = 1_000
// Every time in the log is in the past (the log spans 1,000 s), so that `harp-cli verify-proof` accepts the bundle.
let start = Int64(Date().timeIntervalSince1970) - 2_000

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

let arguments = CommandLine.arguments
if arguments.count == 3, arguments[1] == "device" {
    let key = try HTTPAppend.device(seed: arguments[2])
    print(DeviceKey(key.publicKey).description)
    exit(0)
}
if arguments.count >= 5, arguments[1] == "append", let count = Int(arguments[3]), count > 0 {
    do {
        let lineages = arguments.count > 5 ? Int(arguments[5]) ?? 8 : 8
        try await HTTPAppend.run(base: arguments[2], count: count, seed: arguments[4], lineages: max(1, lineages))
        exit(0)
    } catch {
        print("harp-log-bench: \(error)")
        exit(1)
    }
}

do {
    let logKey = try NoteSigningKey.generate(name: "bench.harp.example/log", type: .ed25519)
    let witnessKeys = try (1...2).map { try NoteSigningKey.generate(name: "w\($0).harp.example", type: .cosignatureV1) }
    var witnesses = witnessKeys.map { Witness(key: $0, logKeys: [logKey.verifierKey]) }
    let policy = try WitnessPolicy(
        log: logKey.verifierKey,
        witnesses: witnessKeys.enumerated().map { .init(name: "w\($0.offset + 1)", key: $0.element.verifierKey) },
        quorum: 2)

    let device = Curve25519.Signing.PrivateKey()
    let lineage = VersionEntry.lineage(instance: "https://cloud.example", fileID: "42")
    // Filler: versions of other files. Their signatures are not checked on append, so one signed template is varied.
    let template = try VersionEntry.signed(
        lineage: VersionEntry.lineage(instance: "https://cloud.example", fileID: "filler"), previous: nil,
        operation: .modify, contentRoot: .zero, size: 1 << 20, etag: "\"5f3c1a2b\"", authorUser: "filler",
        time: start, device: device)

    var log = InMemoryLog(key: logKey)
    var head: VersionEntry?
    let spacing = totalEntries / lineageVersions
    let clock = ContinuousClock()
    let appendStart = clock.now
    try log.append(
        .enrollment(.attested(.enroll, device: DeviceKey(device.publicKey), user: "alice", time: start, logKey: logKey))
    )
    var firstWitnessed: SignedNote?
    for index in 1..<totalEntries {
        let time = start + Int64(index / 1000)
        if index % spacing == spacing / 2 {
            let entry = try VersionEntry.signed(
                lineage: lineage, previous: head, operation: head == nil ? .create : .modify,
                contentRoot: Hash256.sha256(Array("content \(index)".utf8)), size: UInt64(index), etag: "\"\(index)\"",
                authorUser: "alice", time: time, device: device)
            log.append(.version(entry))
            head = entry
        } else {
            var filler = template
            filler.version = UInt64(index)
            filler.time = time
            log.append(.version(filler))
        }
        if head?.version == UInt64(lineageVersions), firstWitnessed == nil {
            // Witness the checkpoint that first holds the head.
            let note = log.signedCheckpoint()
            var cosignatures: [NoteSignature] = []
            for i in witnesses.indices {
                guard let request = log.addCheckpointRequest(oldSize: 0, note: note),
                    case .cosigned(let lines) = witnesses[i].addCheckpoint(request, now: UInt64(time))
                else { fatalError("witness refused") }
                cosignatures += lines
            }
            firstWitnessed = note.adding(cosignatures)
        }
    }
    let appendTime = seconds(clock.now - appendStart)
    guard let firstWitnessed, let firstSize = try? Checkpoint(text: firstWitnessed.text).size else {
        fatalError("head never witnessed")
    }
    let note = log.signedCheckpoint()
    let finalTime = UInt64(start + Int64(totalEntries / 1000))
    var cosignatures: [NoteSignature] = []
    for i in witnesses.indices {
        guard let request = log.addCheckpointRequest(oldSize: Int(firstSize), note: note),
            case .cosigned(let lines) = witnesses[i].addCheckpoint(request, now: finalTime)
        else { fatalError("witness refused") }
        cosignatures += lines
    }
    guard
        let bundle = log.proofBundle(
            lineage: lineage, checkpoint: note.adding(cosignatures), firstWitnessed: firstWitnessed)
    else { fatalError("no bundle") }
    let json = bundle.json()
    let verifier = ProofVerifier(policy: policy, now: Int64(finalTime) + 60)
    var times: [Double] = []
    var versions = 0
    for _ in 0..<5 {
        let t0 = clock.now
        let decoded = try ProofBundle(json: json)
        versions = try verifier.verify(decoded).versions.count
        times.append(seconds(clock.now - t0))
    }
    times.sort()
    print("log entries: \(log.size), lineage versions verified: \(versions)")
    print(
        String(
            format: "append rate (encode + leaf hash + tree, no signing): %.0f entries/s",
            Double(totalEntries) / appendTime))
    print("proof bundle: \(json.count) bytes (\(json.count / lineageVersions) bytes a version)")
    print(String(format: "decode + verify, median of 5: %.1f ms", times[2] * 1000))
    if let directory = ProcessInfo.processInfo.environment["HARP_LOG_BENCH_OUT"] {
        try Data(json).write(to: URL(fileURLWithPath: directory + "/bundle.json"))
        try Data(policy.formatted.utf8).write(to: URL(fileURLWithPath: directory + "/policy"))
    }
} catch {
    print("harp-log-bench: \(error)")
    exit(1)
}
