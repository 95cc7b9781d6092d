internal import Crypto
internal import Foundation
internal import HarpBasics

/// The checksums an uploader claimed with `OC-Checksum` (Nextcloud serves them as `oc:checksums`, e.g.
/// `SHA1:863468…`, and never verifies them), compared with a downloaded file.
///
/// A mismatch is a warning, not a failure: the claim is the uploader's word, while the file was verified against its
/// content root and compared with the server's own bytes. Unknown algorithms are ignored.
struct ClaimedChecksums {
    enum Algorithm: String, CaseIterable {
        case sha1 = "SHA1"
        case md5 = "MD5"
        case sha256 = "SHA256"
        case adler32 = "ADLER32"
    }

    /// The recognised claims, by algorithm, hex in lower case.
    let claims: [Algorithm: String]

    /// Parses the values of `oc:checksum` elements: whitespace-separated `ALGORITHM:hex` pairs.
    init(_ values: [String]) {
        var claims: [Algorithm: String] = [:]
        for value in values {
            for pair in value.split(whereSeparator: \.isWhitespace) {
                let parts = pair.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, let algorithm = Algorithm(rawValue: parts[0].uppercased()),
                    parts[1].count <= 128
                else { continue }
                claims[algorithm] = parts[1].lowercased()
            }
        }
        self.claims = claims
    }

    /// Reads the file at `path` once and returns a note for every claim it does not match (empty when all match, and
    /// one note when the file could not be read: the claims are advisory, so that is no failure).
    func notes(forFileAt path: String) -> [String] {
        do {
            return try mismatches(inFileAt: path)
        } catch {
            return ["warning: the uploader's checksums could not be compared: \(error)"]
        }
    }

    private func mismatches(inFileAt path: String) throws -> [String] {
        guard !claims.isEmpty else { return [] }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FetchError.local("cannot read \(path) to compare its claimed checksums")
        }
        defer { try? handle.close() }
        var sha1 = Insecure.SHA1()
        var md5 = Insecure.MD5()
        var sha256 = SHA256()
        var adler = Adler32()
        while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty {
            if claims[.sha1] != nil { sha1.update(data: block) }
            if claims[.md5] != nil { md5.update(data: block) }
            if claims[.sha256] != nil { sha256.update(data: block) }
            if claims[.adler32] != nil { adler.update(block) }
        }
        var actual: [Algorithm: String] = [:]
        if claims[.sha1] != nil { actual[.sha1] = Array(sha1.finalize()).hexString }
        if claims[.md5] != nil { actual[.md5] = Array(md5.finalize()).hexString }
        if claims[.sha256] != nil { actual[.sha256] = Array(sha256.finalize()).hexString }
        if claims[.adler32] != nil { actual[.adler32] = String(format: "%08x", adler.value) }
        return Algorithm.allCases.compactMap { algorithm in
            guard let claimed = claims[algorithm], let computed = actual[algorithm], claimed != computed else {
                return nil
            }
            return "warning: the uploader's \(algorithm.rawValue) checksum (\(claimed)) does not match the file "
                + "(\(computed)); Nextcloud does not verify these claims, and the file matched the server's bytes"
        }
    }
}

/// Adler-32 (RFC 1950 §8.2), as Nextcloud's `ADLER32:` checksums use it.
struct Adler32 {
    private var a: UInt32 = 1
    private var b: UInt32 = 0

    mutating func update(_ data: Data) {
        // 5552 is the largest n with 255·n·(n+1)/2 + (n+1)·(65520) < 2³²: the sums cannot overflow before a reduction.
        var index = data.startIndex
        while index < data.endIndex {
            let end = data.index(index, offsetBy: 5552, limitedBy: data.endIndex) ?? data.endIndex
            for byte in data[index..<end] {
                a &+= UInt32(byte)
                b &+= a
            }
            a %= 65521
            b %= 65521
            index = end
        }
    }

    var value: UInt32 { (b << 16) | a }
}

extension Array where Element == UInt8 {
    /// Lowercase hexadecimal.
    public var hexString: String { Hex.encode(self) }
}
