import Foundation
import Testing

@testable import NextcloudClient

/// OCS envelopes (JSON and XML), login flow and app-password answers from the recording.
@Suite("OCS and login fixtures")
struct OCSFixtureTests {
    @Test func cloudUserJSON() throws {
        let user = try OCSEnvelope.decode(UserInfo.self, json: Fixture.named("078").body, path: "cloud/user")
        #expect(user.id == "alice")
        #expect(user.displayname == "Alice Example")
        #expect(user.quota?.isUnlimited == true)
        #expect(user.quota?.used?.integer == 26_214_452)
        #expect(user.groups == [])
        #expect(user.language == "en")
    }

    @Test func cloudUserXML() throws {
        let (meta, data) = try OCSEnvelope.parseXML(Fixture.named("079").body, path: "cloud/user")
        #expect(meta.status == "ok")
        #expect(meta.statuscode == 200)
        #expect(meta.isSuccess)
        #expect(data?.child("", "id")?.trimmedText == "alice")
        #expect(data?.child("", "displayname")?.trimmedText == "Alice Example")
        // Booleans: 1 for true.
        #expect(data?.child("", "enabled")?.trimmedText == "1")
    }

    @Test func capabilitiesJSON() throws {
        let caps = try OCSEnvelope.decode(Capabilities.self, json: Fixture.named("080").body, path: "caps")
        #expect(caps.version.major == 34)
        #expect(caps.version.string == "34.0.1")
        #expect(caps.capabilities.dav?.chunking == "1.0")
        #expect(caps.capabilities.files?.chunkedUpload?.maxSize == 104_857_600)
        #expect(caps.capabilities.files?.chunkedUpload?.maxParallelCount == 5)
        #expect(caps.capabilities.files?.versioning == true)
        #expect(caps.capabilities.bruteforce?.delay == 0)
    }

    @Test func capabilitiesXMLAndAnonymous() throws {
        let (meta, data) = try OCSEnvelope.parseXML(Fixture.named("081").body, path: "caps")
        #expect(meta.isSuccess)
        #expect(data?.child("", "version")?.child("", "string")?.trimmedText == "34.0.1")
        let anon = try OCSEnvelope.decode(Capabilities.self, json: Fixture.named("082").body, path: "caps")
        #expect(anon.capabilities.files == nil)
        #expect(anon.capabilities.bruteforce != nil)
        let throttled = try OCSEnvelope.decode(Capabilities.self, json: Fixture.named("129").body, path: "caps")
        #expect(throttled.capabilities.bruteforce?.delay == 25_000)
    }

    @Test func sharesOfPathAsOwner() throws {
        let shares = try OCSEnvelope.decode([Share].self, json: Fixture.named("083").body, path: "shares")
        try #require(shares.count == 1)
        #expect(shares[0].id == "1")
        #expect(shares[0].shareType == 0)
        #expect(shares[0].permissions == .read)
        #expect(shares[0].shareWith == "bob")
        #expect(shares[0].fileSource == 97)
        #expect(shares[0].path == "/Footage")
        let (meta, data) = try OCSEnvelope.parseXML(Fixture.named("085").body, path: "shares")
        #expect(meta.isSuccess)
        #expect(data?.children("", "element").count == 1)
    }

    @Test func sharedWithMe() throws {
        let bob = try OCSEnvelope.decode([Share].self, json: Fixture.named("086").body, path: "shares")
        #expect(bob.map(\.path) == ["/Footage", "/LockTest"])
        #expect(bob[0].mountType == "shared")
        #expect(bob[1].permissions == .all)
        let carol = try OCSEnvelope.decode([Share].self, json: Fixture.named("087").body, path: "shares")
        #expect(carol.isEmpty)
    }

    @Test func shareCreateAndDelete() throws {
        let created = try OCSEnvelope.decode(Share.self, json: Fixture.named("089").body, path: "shares")
        #expect(created.id == "3")
        #expect(created.permissions == [.read, .update])
        #expect(created.shareWith == "carol")
        _ = try OCSEnvelope.decode(EmptyData.self, json: Fixture.named("090").body, path: "shares")
    }

    @Test("OCS failures carry the status and message", arguments: ["084", "088", "091", "092", "093", "107", "128"])
    func failures(prefix: String) throws {
        let fixture = try Fixture.named(prefix)
        let meta = try #require(OCSEnvelope.meta(json: fixture.body))
        #expect(!meta.isSuccess)
        do {
            _ = try OCSEnvelope.decode(EmptyData.self, json: fixture.body, path: "ocs")
            Issue.record("a failure envelope decoded")
        } catch {
            #expect(error.status == meta.statuscode)
            #expect(error.kind == NextcloudError.kind(forStatus: meta.statuscode))
        }
    }

    @Test func v1CarriesTheErrorInTheBodyWithHTTP200() throws {
        let fixture = try Fixture.named("092")
        #expect(fixture.status == 200)
        #expect(
            throws: NextcloudError(
                .notFoundOrNoAccess, status: 404, path: "ocs", detail: "Wrong share ID, share does not exist")
        ) {
            _ = try OCSEnvelope.decode(EmptyData.self, json: fixture.body, path: "ocs")
        }
    }

    @Test func loginFlowStartAndPoll() throws {
        let start = try JSONDecoder().decode(LoginFlow.self, from: Fixture.named("094").body)
        #expect(start.poll.endpoint == "http://127.0.0.1:8080/index.php/login/v2/poll")
        #expect(start.login.hasPrefix("http://127.0.0.1:8080/index.php/login/v2/flow/"))
        let result = try JSONDecoder().decode(LoginFlowResult.self, from: Fixture.named("102").body)
        #expect(result.loginName == "alice")
        #expect(result.server == "http://127.0.0.1:8080")
        #expect(!"\(result)".contains(result.appPassword))
        for waiting in ["095", "103"] {
            let fixture = try Fixture.named(waiting)
            #expect(fixture.status == 404)
            #expect(fixture.bodyText == "[]")
            #expect((try? JSONDecoder().decode(LoginFlowResult.self, from: fixture.body)) == nil)
        }
    }

    @Test func appPasswordExchangeAndDelete() throws {
        struct Answer: Decodable { var apppassword: String }
        let answer = try OCSEnvelope.decode(Answer.self, json: Fixture.named("106").body, path: "getapppassword")
        #expect(answer.apppassword == "<app-password>")
        _ = try OCSEnvelope.decode(EmptyData.self, json: Fixture.named("108").body, path: "apppassword")
    }

    @Test func requestsInTheRecordingSendTheOCSHeader() throws {
        for fixture in Fixture.all where fixture.requestPath.hasPrefix("/ocs/") && fixture.status != 412 {
            #expect(fixture.requestHeaders[.ocsAPIRequest] == "true", "\(fixture.name)")
        }
    }
}
