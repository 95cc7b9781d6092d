// swift-tools-version: 6.2
// The libFuzzer targets for the wire decoders, kept out of the main package so `swift test` never builds it.
// Build and run: bench/wire/fuzz/run.sh (docs/fuzzing.md).
import PackageDescription

let package = Package(
    name: "harp-wire-fuzz",
    dependencies: [
        .package(name: "harp", path: "../../.."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "harp-wire-fuzz",
            dependencies: [
                .product(name: "SwarmKit", package: "harp"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        // TransportReader against MessageParser, differentially. Two of its files are symlinks into the tests: the
        // check (TransportReaderFuzzTests.swift, whose Swift Testing suite HARP_WIRE_FUZZ leaves out) and the seeds
        // (WireSamples.swift). They reach SwarmKit's internal types by `@testable import`, so run.sh builds the
        // package with `-Xswiftc -enable-testing`.
        .executableTarget(
            name: "harp-transport-fuzz",
            dependencies: [
                .product(name: "SwarmKit", package: "harp"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: [.unsafeFlags(["-parse-as-library"]), .define("HARP_WIRE_FUZZ")]
        ),
    ]
)
