/// What an offline verification established about a file's history.
///
/// It cannot show that no newer version exists: the log may hold versions after the checkpoint, and a server can
/// withhold the newest versions from a bundle (`VerifiedHistory.limitation`).
public struct VerifiedHistory: Hashable, Sendable {
    /// One verified version.
    public struct Version: Hashable, Sendable {
        public var number: UInt64
        public var operation: VersionOperation
        public var authorUser: String
        public var authorDevice: DeviceKey
        public var size: UInt64
        /// Unix seconds, as the author's device gave it.
        public var time: Int64
        /// The version's leaf in the log.
        public var leafIndex: UInt64
        /// `h_n`.
        public var chainHash: String
    }

    /// The times (unix seconds) of the counted cosignatures on a checkpoint.
    public struct WitnessedTimes: Hashable, Sendable {
        /// The earliest counted cosignature.
        public var earliest: UInt64
        /// The latest counted cosignature.
        public var latest: UInt64
        /// The time by which a quorum had cosigned: the quorum-th earliest counted cosignature.
        public var quorumReached: UInt64
    }

    /// The sentence every report carries.
    public static let limitation =
        "No offline proof can show that no newer version exists: this proves the history up to the checkpoint only."

    /// The lineage (hex).
    public var lineage: String
    /// The versions, version 1 first.
    public var versions: [Version]
    /// The log's origin.
    public var origin: String
    /// The presented checkpoint's size.
    public var checkpointSize: UInt64
    /// Cosignature times on the presented checkpoint: the history is current as of these times.
    public var checkpointWitnessed: WitnessedTimes
    /// Cosignature times on the checkpoint at which the head was first witnessed: the head existed by then.
    public var headWitnessed: WitnessedTimes
    /// Distinct witness keys counted on the presented checkpoint (policy names).
    public var witnesses: [String]
}
