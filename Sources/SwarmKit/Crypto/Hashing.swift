internal import CSodium

/// SHA-256, HMAC-SHA256 and the Noise `HKDF` (revision 34, section 4.3), over libsodium.
///
/// These run only during handshakes (a few dozen calls per connection), so libsodium's portable
/// SHA-256 is fast enough; bulk hashing of chunks uses swift-crypto in ChunkStore.
enum NoiseHash {
    static let hashLength = 32

    static func sha256(_ parts: UnsafeRawBufferPointer...) -> [UInt8] {
        Sodium.ensureInitialised()
        var state = crypto_hash_sha256_state()
        crypto_hash_sha256_init(&state)
        for part in parts where part.count > 0 {
            crypto_hash_sha256_update(&state, part.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(part.count))
        }
        var out = [UInt8](repeating: 0, count: hashLength)
        crypto_hash_sha256_final(&state, &out)
        return out
    }

    /// HMAC-SHA256(key, parts...) written into `out` (32 bytes). The HMAC state is wiped afterwards.
    static func hmac(
        key: UnsafeRawBufferPointer, _ parts: [UnsafeRawBufferPointer], into out: UnsafeMutableRawBufferPointer
    ) {
        precondition(out.count == hashLength)
        Sodium.ensureInitialised()
        var state = crypto_auth_hmacsha256_state()
        _ = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1) { empty in
            crypto_auth_hmacsha256_init(
                &state, key.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(empty.baseAddress!),
                key.count)
        }
        for part in parts where part.count > 0 {
            crypto_auth_hmacsha256_update(
                &state, part.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(part.count))
        }
        crypto_auth_hmacsha256_final(&state, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
        withUnsafeMutableBytes(of: &state) { sodium_memzero($0.baseAddress!, $0.count) }
    }

    /// Noise `HKDF(chaining_key, input_key_material, num_outputs)` with HASHLEN = 32.
    static func hkdf(chainingKey: SecureBytes, inputKeyMaterial: UnsafeRawBufferPointer, outputs: Int) -> [SecureBytes]
    {
        precondition(outputs == 2 || outputs == 3)
        let tempKey = chainingKey.withUnsafeBytes { ck in
            SecureBytes(count: hashLength) { hmac(key: ck, [inputKeyMaterial], into: $0) }
        }
        var results: [SecureBytes] = []
        results.reserveCapacity(outputs)
        for index in 1...outputs {
            var counter = UInt8(index)
            let next = tempKey.withUnsafeBytes { tk in
                withUnsafeBytes(of: &counter) { counterBytes in
                    SecureBytes(count: hashLength) { out in
                        if let previous = results.last {
                            previous.withUnsafeBytes { hmac(key: tk, [$0, counterBytes], into: out) }
                        } else {
                            hmac(key: tk, [counterBytes], into: out)
                        }
                    }
                }
            }
            results.append(next)
        }
        return results
    }
}
