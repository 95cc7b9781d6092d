// libFuzzer entry point: every input goes through the frame parser and the message parser, as a whole
// and split in two at a position taken from its first byte. A crash, trap or leak is a finding; add the
// input to Tests/SwarmKitTests/FuzzTests.swift as a regression case.
import NIOCore
import SwarmKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var buffer = ByteBuffer(bytes: bytes)
    let messageParser = MessageParser()
    do {
        var messages = buffer
        while let message = try messageParser.parse(&messages) {
            var again = message.encoded()
            guard (try? messageParser.parse(&again)) == message else { preconditionFailure("re-encoding differs") }
        }
    } catch {}
    do {
        let parser = FrameParser()
        while let frame = try parser.parse(&buffer) {
            precondition(frame.readableBytes >= parser.minimumLength && frame.readableBytes <= parser.maximumLength)
        }
    } catch {}
    return 0
}
