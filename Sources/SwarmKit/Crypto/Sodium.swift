internal import CSodium

/// libsodium is initialised exactly once per process, the first time any wrapper needs it.
///
/// A global `let` is initialised lazily and thread-safely by the Swift runtime, which gives the
/// "once" without a lock of our own. `sodium_init()` returns 0 on first success and 1 when already
/// initialised; -1 means the library cannot be used at all (no entropy source), which no later call
/// could recover from.
private let sodiumInitialised: Bool = sodium_init() >= 0

enum Sodium {
    /// Makes sure libsodium is initialised; every wrapper calls this before its first primitive.
    @inline(__always)
    static func ensureInitialised() {
        precondition(sodiumInitialised, "libsodium failed to initialise (sodium_init() == -1)")
    }

    /// True when libsodium's AES-256-GCM may be used on this CPU (it needs AES-NI and PCLMUL).
    static var aes256GCMAvailable: Bool {
        ensureInitialised()
        return crypto_aead_aes256gcm_is_available() == 1
    }

    /// Fills `count` bytes from the operating system's CSPRNG.
    static func randomBytes(_ count: Int) -> SecureBytes {
        ensureInitialised()
        return SecureBytes(count: count) { buffer in
            randombytes_buf(buffer.baseAddress!, buffer.count)
        }
    }
}
