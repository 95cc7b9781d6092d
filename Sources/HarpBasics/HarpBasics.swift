/// HarpBasics: the small helpers every other harp module needs, with no dependency beyond the standard library.
///
/// - ``Hex``: lowercase hexadecimal, the encoding of hashes, keys, nonces and signatures in harp's text formats.
/// - ``Backoff``: exponential backoff with a cap, deterministic, plus a jittered variant for reconnect loops.
/// - ``RateMeter``: bytes per second over caller-given times, with exponential decay.
/// - ``TimeSource``, ``MonotonicClock``, ``ManualClock``: "now" in seconds as a `Double`, for code that must
///   take time as an input (and tests that drive it by hand).
///
/// Nothing here does I/O or reads a global; every type is a value or `Sendable`.
public enum HarpBasics {}
