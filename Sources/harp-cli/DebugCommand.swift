import ArgumentParser
import Foundation
import SwarmKit

/// `harp-cli debug`: tools for looking into harp's own decisions. Kept out of `--help`.
struct DebugCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug",
        abstract: "Tools for looking into harp's own decisions.",
        shouldDisplay: false,
        subcommands: [DebugReplayCommand.self]
    )
}

/// `harp-cli debug replay FILE`: feeds a recording made by `get --record-engine FILE` to fresh swarm engines and
/// compares every action with the recorded ones.
struct DebugReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a swarm engine recording and check that every decision comes out the same.",
        discussion: """
            Prints the number of swarms, events and actions, then `identical` when every event gave exactly the \
            recorded actions (exit 0), or `different` and the first differences (exit 1).

            Example:
              harp-cli get /Footage/raw.mov -o . --record-engine run.jsonl
              harp-cli debug replay run.jsonl
            """
    )

    @Argument(help: ArgumentHelp("A recording written by `get --record-engine`.", valueName: "FILE"))
    var file: String

    func run() async throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            throw ValidationError("cannot read \(file): \(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        var replay = EngineReplay()
        var lineNumber = 0
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: true) {
            lineNumber += 1
            do {
                replay.feed(try decoder.decode(EngineRecording.Line.self, from: line))
            } catch {
                throw ValidationError("\(file):\(lineNumber): not a recording line: \(error)")
            }
        }
        print("swarms: \(replay.swarms)")
        print("events: \(replay.events)")
        print("actions: \(replay.actions)")
        if replay.identical {
            print("identical")
            return
        }
        print("different: \(replay.mismatches) events")
        for difference in replay.differences { printError(difference) }
        throw ExitCode(HarpExitCode.failure.rawValue)
    }
}
