/// Why a policy file was refused: the line (1-based) and the rule it breaks.
public struct PolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The 1-based line number (0 for a rule about the whole file).
    public var line: Int
    /// What is wrong.
    public var message: String

    public var description: String { line > 0 ? "policy line \(line): \(message)" : "policy: \(message)" }
}

/// Which log and witnesses a verifier trusts, modelled on Sigsum's policy files.
///
/// ```
/// # comment
/// log VKEY                  exactly once; an Ed25519 (0x01) signed-note key named by the log's origin
/// witness NAME VKEY         repeatable; a cosignature/v1 (0x04) key
/// quorum K                  exactly once; 1 <= K <= the number of distinct witness keys
/// ```
/// A public key listed twice (under two names) is one witness: quorums count distinct public keys.
public struct WitnessPolicy: Hashable, Sendable {
    /// A witness line.
    public struct Witness: Hashable, Sendable {
        /// The policy's own name for the witness.
        public var name: String
        /// The witness's cosignature key.
        public var key: NoteVerifierKey

        /// A witness line's parts.
        public init(name: String, key: NoteVerifierKey) {
            self.name = name
            self.key = key
        }
    }

    /// Largest policy file accepted, in bytes.
    public static let maximumSize = 64 * 1024

    /// The log's checkpoint key.
    public var log: NoteVerifierKey
    /// The witnesses, in file order.
    public var witnesses: [Witness]
    /// How many distinct witness keys must cosign.
    public var quorum: Int

    /// A policy from its parts (checked as a parsed file is).
    public init(log: NoteVerifierKey, witnesses: [Witness], quorum: Int) throws(PolicyError) {
        try Self.validate(log: log, witnesses: witnesses, quorum: quorum)
        self.log = log
        self.witnesses = witnesses
        self.quorum = quorum
    }

    private static func validate(log: NoteVerifierKey, witnesses: [Witness], quorum: Int) throws(PolicyError) {
        guard log.type == .ed25519 else { throw PolicyError(line: 0, message: "the log key must be of type 0x01") }
        guard witnesses.allSatisfy({ $0.key.type == .cosignatureV1 }) else {
            throw PolicyError(line: 0, message: "witness keys must be of type 0x04 (cosignature/v1)")
        }
        let distinct = Set(witnesses.map(\.key.publicKey)).count
        guard quorum >= 1, quorum <= distinct else {
            throw PolicyError(line: 0, message: "quorum \(quorum) is not between 1 and the \(distinct) distinct keys")
        }
    }

    /// Parses a policy file.
    public init(parsing text: String) throws(PolicyError) {
        guard text.utf8.count <= Self.maximumSize else {
            throw PolicyError(line: 0, message: "over \(Self.maximumSize) bytes")
        }
        var log: NoteVerifierKey?
        var witnesses: [Witness] = []
        var quorum: (value: Int, line: Int)?
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let content = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let keyword = words.first else { continue }
            do {
                switch (keyword, words.count) {
                case ("log", 2):
                    guard log == nil else { throw PolicyError(line: number, message: "a second 'log' line") }
                    let key = try NoteVerifierKey(vkey: String(words[1]))
                    guard key.type == .ed25519 else { throw PolicyError(line: number, message: "not an 0x01 key") }
                    log = key
                case ("witness", 3):
                    let key = try NoteVerifierKey(vkey: String(words[2]))
                    guard key.type == .cosignatureV1 else {
                        throw PolicyError(line: number, message: "a witness key is of type 0x04 (cosignature/v1)")
                    }
                    witnesses.append(Witness(name: String(words[1]), key: key))
                case ("quorum", 2):
                    guard quorum == nil else { throw PolicyError(line: number, message: "a second 'quorum' line") }
                    guard let value = Int(words[1]), value >= 1 else {
                        throw PolicyError(line: number, message: "quorum is a number of at least 1")
                    }
                    quorum = (value, number)
                default:
                    throw PolicyError(
                        line: number, message: "expected 'log VKEY', 'witness NAME VKEY' or 'quorum K'")
                }
            } catch let error as PolicyError {
                throw error
            } catch {
                throw PolicyError(line: number, message: "\(error)")
            }
        }
        guard let log else { throw PolicyError(line: 0, message: "no 'log' line") }
        guard let quorum else { throw PolicyError(line: 0, message: "no 'quorum' line") }
        do {
            try Self.validate(log: log, witnesses: witnesses, quorum: quorum.value)
        } catch {
            throw PolicyError(line: quorum.line, message: error.message)
        }
        self.log = log
        self.witnesses = witnesses
        self.quorum = quorum.value
    }

    /// The policy as a file.
    public var formatted: String {
        "log \(log.vkey)\n" + witnesses.map { "witness \($0.name) \($0.key.vkey)\n" }.joined() + "quorum \(quorum)\n"
    }
}
