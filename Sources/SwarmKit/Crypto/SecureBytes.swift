internal import CSodium

/// Secret bytes (keys, seeds, chaining keys) in memory that is wiped with `sodium_memzero` on deinit.
///
/// The bytes are written only while the initialiser runs and are read-only afterwards, so a value can be
/// shared between threads: that is the argument for `@unchecked Sendable` here. Never copy the contents
/// into an `Array` that outlives a call; use `withUnsafeBytes` instead.
public final class SecureBytes: @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer

    /// The number of bytes held.
    public var count: Int { storage.count }

    /// Allocates `count` bytes and lets `initialise` fill them.
    init(count: Int, _ initialise: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        precondition(count > 0, "SecureBytes needs at least one byte")
        Sodium.ensureInitialised()
        storage = .allocate(byteCount: count, alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        do {
            try initialise(storage)
        } catch {
            sodium_memzero(storage.baseAddress!, storage.count)
            storage.deallocate()
            throw error
        }
    }

    /// Copies `bytes` into wiped-on-deinit storage. The caller should wipe its own copy.
    convenience init(copying bytes: some Collection<UInt8>) {
        self.init(count: bytes.count) { buffer in
            _ = buffer.initializeMemory(as: UInt8.self, from: bytes)
        }
    }

    deinit {
        sodium_memzero(storage.baseAddress!, storage.count)
        storage.deallocate()
    }

    /// Calls `body` with read-only access to the secret bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage))
    }

    /// Constant-time comparison (`sodium_memcmp`).
    func constantTimeEquals(_ other: SecureBytes) -> Bool {
        guard count == other.count else { return false }
        return withUnsafeBytes { a in
            other.withUnsafeBytes { b in sodium_memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
        }
    }
}
