import Logging
import Synchronization

/// Collects every log line (message and metadata, rendered) in memory, at trace level.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    private let onLine: (@Sendable (String) -> Void)?

    /// `onLine` sees every line as it is logged (to wait for an event without sleeping).
    init(onLine: (@Sendable (String) -> Void)? = nil) {
        self.onLine = onLine
    }

    var logger: Logger {
        var logger = Logger(label: "test.nextcloud") { label in CapturingHandler(capture: self, label: label) }
        logger.logLevel = .trace
        return logger
    }

    var all: [String] { lines.withLock { $0 } }

    fileprivate func append(_ line: String) {
        lines.withLock { $0.append(line) }
        onLine?(line)
    }
}

private struct CapturingHandler: LogHandler {
    let capture: LogCapture
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(event.message) \(rendered)")
    }
}
