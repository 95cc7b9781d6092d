/// Lowercase hexadecimal: the text form of every hash, key, nonce, signature and proof in harp.
///
/// Encoding always writes lowercase digits; decoding accepts either case and nothing else (no `0x` prefix, no
/// whitespace, no separators), so a value has exactly one encoding on the way out.
public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The bytes as lowercase hex digits, two per byte.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of hex digits in either case; `nil` for an odd number of digits or any other character.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = text.utf8
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var high: UInt8?
        for char in utf8 {
            guard let value = value(of: char) else { return nil }
            if let pending = high {
                out.append(pending << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return out
    }

    /// Decodes exactly `count` bytes; `nil` for any other length or a character that is not a hex digit.
    public static func decode(_ text: some StringProtocol, count: Int) -> [UInt8]? {
        guard text.utf8.count == count * 2 else { return nil }
        return decode(text)
    }

    /// The value of one hex digit (either case); `nil` for any other byte.
    public static func value(of digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
