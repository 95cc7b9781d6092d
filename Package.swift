// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "harp",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "harp-cli", targets: ["harp-cli"]),
        .executable(name: "harp-signal-load", targets: ["harp-signal-load"]),
        .library(name: "HarpBasics", targets: ["HarpBasics"]),
        .library(name: "ChunkStore", targets: ["ChunkStore"]),
        .library(name: "VersionLog", targets: ["VersionLog"]),
        .executable(name: "harp-log-bench", targets: ["harp-log-bench"]),
        .library(name: "SwarmKit", targets: ["SwarmKit"]),
        .library(name: "SignalingProtocol", targets: ["SignalingProtocol"]),
        .library(name: "SignalingClient", targets: ["SignalingClient"]),
        .library(name: "SignalingServer", targets: ["SignalingServer"]),
        .library(name: "NextcloudClient", targets: ["NextcloudClient"]),
        .library(name: "DevCloud", targets: ["DevCloud"]),
        .library(name: "HarpHTTP", targets: ["HarpHTTP"]),
        .executable(name: "harp-wire-bench", targets: ["harp-wire-bench"]),
        .executable(name: "harp-hostile-peer", targets: ["harp-hostile-peer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // System libraries from apt, found through pkg-config.
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // UPnP IGD port mapping (docs/nat.md).
        .systemLibrary(name: "CMiniUPnPc", pkgConfig: "miniupnpc", providers: [.apt(["libminiupnpc-dev"])]),

        // Hex, backoff, rate meter, clock: the helpers every module needs; depends on nothing.
        .target(name: "HarpBasics", swiftSettings: swiftSettings),
        .target(
            name: "ChunkStore",
            dependencies: [
                "HarpBasics",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The version log's formats, witness state machine, proof bundles and offline verifier (docs/proofs.md).
        .target(
            name: "VersionLog",
            dependencies: [
                "ChunkStore",
                "HarpBasics",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "harp-log-bench",
            dependencies: ["ChunkStore", "VersionLog", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // One HTTP/1.1 request with its answer bounded (body, head, deadline): for answers from other servers.
        .target(
            name: "HarpHTTP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "NextcloudClient",
            dependencies: [
                "CCurl",
                "HarpBasics",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: swiftSettings
        ),
        // Signaling: the protocol (messages, keys, proofs) that both sides share, the client that peers link, and the
        // server, whose dependencies (Hummingbird, GRDB, X509, Prometheus) no client links.
        .target(
            name: "SignalingProtocol",
            dependencies: [
                "HarpBasics",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Signaling/Protocol",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SignalingClient",
            dependencies: [
                "HarpBasics",
                "SignalingProtocol",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/Signaling/Client",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SignalingServer",
            dependencies: [
                "ChunkStore",
                "HarpBasics",
                "HarpHTTP",
                "NextcloudClient",
                "SignalingProtocol",
                "VersionLog",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "Sources/Signaling/Server",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwarmKit",
            dependencies: [
                "ChunkStore",
                "CSodium",
                "HarpBasics",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "harp-wire-bench",
            dependencies: [
                "SwarmKit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "harp-hostile-peer",
            dependencies: [
                "ChunkStore",
                "SwarmKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "DevCloud",
            dependencies: [
                "HarpBasics",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HarpClient",
            dependencies: [
                "HarpBasics",
                "HarpHTTP",
                "ChunkStore",
                "CMiniUPnPc",
                "NextcloudClient",
                "SignalingClient",
                "SignalingProtocol",
                "SwarmKit",
                "VersionLog",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "harp-cli",
            dependencies: [
                "ChunkStore",
                "HarpClient",
                "HarpHTTP",
                "DevCloud",
                "NextcloudClient",
                "SignalingClient",
                "SignalingProtocol",
                "SignalingServer",
                "SwarmKit",
                "VersionLog",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "HarpBasicsTests", dependencies: ["HarpBasics"], swiftSettings: swiftSettings),
        // A scripted HTTP server for the tests of clients that must bound what a server sends.
        .target(
            name: "HarpTestHTTPServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/HarpTestHTTPServer",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HarpHTTPTests",
            dependencies: [
                "HarpHTTP",
                "HarpTestHTTPServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChunkStoreTests",
            dependencies: ["ChunkStore", "HarpBasics"],
            resources: [.copy("Vectors")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwarmKitTests",
            dependencies: [
                "SwarmKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            resources: [.copy("Vectors")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "harp-signal-load",
            dependencies: [
                "HarpBasics",
                "SignalingProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SignalingTests",
            dependencies: [
                "ChunkStore",
                "HarpTestHTTPServer",
                "SignalingClient",
                "SignalingProtocol",
                "SignalingServer",
                "VersionLog",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NextcloudClientTests",
            dependencies: [
                "NextcloudClient",
                "DevCloud",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VersionLogTests",
            dependencies: [
                "ChunkStore", "HarpBasics", "VersionLog", .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("Vectors")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "EndToEndTests", dependencies: ["ChunkStore", "VersionLog"], swiftSettings: swiftSettings),
        .testTarget(
            name: "HarpClientTests",
            dependencies: [
                "ChunkStore",
                "HarpTestHTTPServer",
                "DevCloud",
                "HarpClient",
                "NextcloudClient",
                "SignalingClient",
                "SignalingProtocol",
                "SignalingServer",
                "SwarmKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DevCloudTests",
            dependencies: [
                "DevCloud",
                "HarpBasics",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
    ]
)
