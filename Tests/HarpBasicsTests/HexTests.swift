import HarpBasics
import Testing

@Suite struct HexTests {
    @Test func encodesLowercaseTwoDigitsPerByte() {
        #expect(Hex.encode([]) == "")
        #expect(Hex.encode([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(Hex.encode(Array(0...255)).count == 512)
    }

    @Test func decodesEitherCase() {
        #expect(Hex.decode("000fa0FF") == [0x00, 0x0f, 0xa0, 0xff])
        #expect(Hex.decode("") == [])
        #expect(Hex.decode("DeadBeef"[...]) == [0xde, 0xad, 0xbe, 0xef])
    }

    @Test(arguments: ["0", "abc", "0g", "0x00", " 00", "00 ", "é0", "+1"])
    func refusesAnythingElse(_ text: String) {
        #expect(Hex.decode(text) == nil)
    }

    @Test func roundTripsEveryByte() {
        let bytes = (0...255).map { UInt8($0) }
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
    }

    @Test func decodesAnExactLengthOnly() {
        let key = String(repeating: "ab", count: 32)
        #expect(Hex.decode(key, count: 32) == [UInt8](repeating: 0xab, count: 32))
        #expect(Hex.decode(key, count: 31) == nil)
        #expect(Hex.decode(key + "00", count: 32) == nil)
        #expect(Hex.decode(String(repeating: "zz", count: 32), count: 32) == nil)
    }

    @Test func digitValues() {
        #expect(Hex.value(of: UInt8(ascii: "0")) == 0)
        #expect(Hex.value(of: UInt8(ascii: "F")) == 15)
        #expect(Hex.value(of: UInt8(ascii: "f")) == 15)
        #expect(Hex.value(of: UInt8(ascii: "g")) == nil)
    }
}
