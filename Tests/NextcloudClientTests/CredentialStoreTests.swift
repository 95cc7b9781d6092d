import Foundation
import Testing

@testable import NextcloudClient

@Suite("Credential store and precedence")
struct CredentialStoreTests {
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("harp-nc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func saveLoadDeleteWith0600() throws {
        let root = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = CredentialStore(environment: ["HARP_CONFIG_DIR": root.appendingPathComponent("cfg").path])
        let credentials = Credentials(
            server: URL(string: "https://cloud.example.com/nc")!, user: "alice", appPassword: "a\"b\\c\u{1}d")
        try store.save(credentials)
        let attributes = try FileManager.default.attributesOfItem(atPath: store.fileURL.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let loaded = try store.load()
        #expect(loaded.server == "https://cloud.example.com/nc")
        #expect(loaded.user == "alice")
        #expect(loaded.appPassword == "a\"b\\c\u{1}d")
        #expect(!loaded.description.contains("a\"b"))
        try store.delete()
        #expect(try store.load() == StoredLogin())
    }

    @Test func userIDIsStoredWhenItDiffersFromTheLoginName() throws {
        let root = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = CredentialStore(directory: root)
        let server = try #require(URL(string: "https://h.example"))
        try store.save(Credentials(server: server, user: "alice@example.com", appPassword: "pw", userID: "uid-42"))
        let loaded = try store.load()
        #expect(loaded.userID == "uid-42")
        let resolved = try Credentials.resolve(
            server: nil, user: nil, appPassword: nil, environment: [:], stored: loaded)
        #expect(resolved.userID == "uid-42")
        #expect(resolved.user == "alice@example.com")
        // Another login name given by flag: the stored id does not belong to it.
        let other = try Credentials.resolve(
            server: nil, user: "bob", appPassword: nil, environment: [:], stored: loaded)
        #expect(other.userID == "bob")
        try store.save(Credentials(server: server, user: "carol", appPassword: "pw"))
        #expect(try String(contentsOf: store.fileURL, encoding: .utf8).contains("user_id") == false)
    }

    @Test func directoryResolution() {
        #expect(
            CredentialStore(environment: ["HARP_CONFIG_DIR": "/a", "XDG_CONFIG_HOME": "/b"]).directory.path == "/a")
        #expect(CredentialStore(environment: ["XDG_CONFIG_HOME": "/b", "HOME": "/h"]).directory.path == "/b/harp")
        #expect(CredentialStore(environment: ["HOME": "/h"]).directory.path == "/h/.config/harp")
    }

    @Test func precedenceIsFlagThenEnvironmentThenFile() throws {
        let stored = StoredLogin(server: "https://file.example", user: "fileuser", appPassword: "filepw")
        let env = ["HARP_SERVER": "https://env.example", "HARP_USER": "envuser"]
        let fromFlags = try Credentials.resolve(
            server: "https://flag.example", user: nil, appPassword: nil, environment: env, stored: stored)
        #expect(fromFlags.server.absoluteString == "https://flag.example")
        #expect(fromFlags.user == "envuser")
        #expect(fromFlags.appPassword == "filepw")
        #expect(!fromFlags.description.contains("filepw"))
        #expect(throws: CredentialStoreError.notLoggedIn(missing: ["app password"])) {
            _ = try Credentials.resolve(
                server: nil, user: nil, appPassword: nil, environment: env, stored: StoredLogin())
        }
    }

    @Test func serverURLValidation() throws {
        #expect(try Credentials.parseServerURL("https://h.example/nc/").absoluteString == "https://h.example/nc")
        for bad in ["ftp://h", "h.example", "https://u:pw@h.example", "https://h?x=1"] {
            #expect(throws: CredentialStoreError.self) { _ = try Credentials.parseServerURL(bad) }
        }
        do {
            _ = try Credentials.parseServerURL("https://u:pw@h.example")
        } catch {
            #expect(!error.description.contains("pw"))
        }
    }

    @Test func malformedFileIsReported() throws {
        let root = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = CredentialStore(directory: root)
        try Data("server = https://unquoted\n".utf8).write(to: store.fileURL)
        #expect(throws: CredentialStoreError.malformed(file: store.fileURL.path, line: 1)) { _ = try store.load() }
    }
}
