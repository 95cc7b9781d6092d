// swift-tools-version: 6.2
// A libFuzzer target for the wire decoders, kept out of the main package so `swift test` never builds it.
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
        )
    ]
)
