import Testing

@testable import VersionLog

/// Policy files: `log VKEY`, `witness NAME VKEY`, `quorum K`, comments; errors name the line.
@Suite("Witness policy")
struct PolicyTests {
    let world: World

    init() throws { world = try World() }

    @Test func parsesAPolicyWithComments() throws {
        let text = """
            # harp verifier policy
            log \(world.logKey.verifierKey.vkey)

            witness one \(world.witnessKeys[0].verifierKey.vkey)   # the first
            witness two \(world.witnessKeys[1].verifierKey.vkey)
            quorum 2
            """
        let policy = try WitnessPolicy(parsing: text)
        #expect(policy.log == world.logKey.verifierKey)
        #expect(policy.witnesses.map(\.name) == ["one", "two"])
        #expect(policy.quorum == 2)
    }

    @Test func errorsNameTheLine() {
        let log = "log \(world.logKey.verifierKey.vkey)"
        let witness = "witness one \(world.witnessKeys[0].verifierKey.vkey)"
        let cases: [(String, Int)] = [
            ("\(log)\n\(witness)\nquorum two\n", 3),
            ("\(log)\nwitnes one key\nquorum 1\n", 2),
            ("# c\n\(log)\n\(log)\n\(witness)\nquorum 1\n", 3),
            ("\(log)\nwitness one \(world.logKey.verifierKey.vkey)\nquorum 1\n", 2),
            ("log \(world.witnessKeys[0].verifierKey.vkey)\n\(witness)\nquorum 1\n", 1),
            ("\(log)\n\(witness)\nquorum 2\n", 3),
            ("\(log)\n\(witness)\n", 0),
            ("\(witness)\nquorum 1\n", 0),
        ]
        for (text, line) in cases {
            #expect(throws: PolicyError.self, "\(text)") { try WitnessPolicy(parsing: text) }
            do {
                _ = try WitnessPolicy(parsing: text)
            } catch {
                #expect(error.line == line, "\(text): \(error)")
            }
        }
    }

    /// A key listed twice is one witness: a quorum of two needs two distinct keys.
    @Test func aKeyListedTwiceIsOneWitness() throws {
        let log = "log \(world.logKey.verifierKey.vkey)"
        let key = world.witnessKeys[0].verifierKey.vkey
        #expect(throws: PolicyError.self) {
            try WitnessPolicy(parsing: "\(log)\nwitness a \(key)\nwitness b \(key)\nquorum 2\n")
        }
        #expect(
            try WitnessPolicy(parsing: "\(log)\nwitness a \(key)\nwitness b \(key)\nquorum 1\n").witnesses.count == 2)
    }

    @Test func oversizePoliciesAreRefused() {
        let text = String(repeating: "#", count: WitnessPolicy.maximumSize + 1)
        #expect(throws: PolicyError.self) { try WitnessPolicy(parsing: text) }
    }
}
