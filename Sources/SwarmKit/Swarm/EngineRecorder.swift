public import ChunkStore
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Writes an `EngineRecording` to a file (created with mode 0600; it names device keys and the content root), one
/// JSON line per header and per event, buffered and written in blocks. Shared by every swarm of a process: each gets a
/// number (`swarm(_:)`).
public final class EngineRecorder: Sendable {
    public typealias Header = EngineRecording.Header

    private struct State {
        var descriptor: Int32
        var buffer: [UInt8] = []
        var swarms = 0
        var failed = false
    }

    private let state: Mutex<State>
    private let encoder: Mutex<JSONEncoder>

    /// Creates (or truncates) the file at `path`.
    public init(path: String) throws(ChunkStoreError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
        state = Mutex(State(descriptor: descriptor))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        self.encoder = Mutex(encoder)
    }

    deinit {
        flush()
        state.withLock { _ = close($0.descriptor) }
    }

    /// Registers a swarm's engine and returns the handle its shell records with.
    public func swarm(_ header: Header) -> Swarm {
        let number = state.withLock { state in
            state.swarms += 1
            return state.swarms
        }
        append(EngineRecording.Line(swarm: number, header: header))
        return Swarm(recorder: self, number: number)
    }

    /// Writes what is buffered.
    public func flush() {
        state.withLock { state in
            guard !state.failed else { return }
            var offset = 0
            while offset < state.buffer.count {
                let written = state.buffer.withUnsafeBytes {
                    write(state.descriptor, $0.baseAddress! + offset, $0.count - offset)
                }
                guard written > 0 else {
                    state.failed = true
                    return
                }
                offset += written
            }
            state.buffer.removeAll(keepingCapacity: true)
        }
    }

    fileprivate func append(_ line: EngineRecording.Line) {
        guard let data = encoder.withLock({ try? $0.encode(line) }) else { return }
        let full = state.withLock { state in
            state.buffer.append(contentsOf: data)
            state.buffer.append(0x0A)
            return state.buffer.count >= 1 << 20
        }
        if full { flush() }
    }

    /// One swarm's side of the recorder.
    public struct Swarm: Sendable {
        let recorder: EngineRecorder
        let number: Int

        func record(at t: Double, _ event: EngineEvent, _ actions: [EngineAction]) {
            recorder.append(EngineRecording.Line(swarm: number, t: t, event: event, actions: actions))
        }

        func flush() { recorder.flush() }
    }
}
