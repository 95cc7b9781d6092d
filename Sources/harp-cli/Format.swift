import Foundation
import HarpClient

/// Human-readable numbers for terminal output.
enum Format {
    static func rate(_ bytesPerSecond: Double) -> String {
        formatBytes(Int64(bytesPerSecond)) + "/s"
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

extension Duration {
    /// The duration in seconds as a Double.
    var secondsValue: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
