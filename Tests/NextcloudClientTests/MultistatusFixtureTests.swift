import Foundation
import Testing

@testable import NextcloudClient

/// The PROPFIND parser against every recorded 207 multistatus.
@Suite("PROPFIND multistatus fixtures")
struct MultistatusFixtureTests {
    /// The href prefix of the user's root for a fixture's request path.
    static func rootHref(for fixture: Fixture) -> String {
        let parts = fixture.requestPath.split(separator: "/")
        // /remote.php/dav/{files|versions|uploads}/USER/...
        guard parts.count >= 4 else { return "/" }
        return "/" + parts[0..<4].joined(separator: "/")
    }

    static let multistatusFixtures = Fixture.all.filter { $0.status == 207 && $0.method != "PROPPATCH" }

    @Test("every 207 PROPFIND fixture parses into items", arguments: multistatusFixtures.map(\.name))
    func everyMultistatusParses(name: String) throws {
        let fixture = try Fixture(named: name)
        let items = try Multistatus.parse(fixture.body, rootHref: Self.rootHref(for: fixture), path: nil)
        #expect(!items.isEmpty)
        for item in items {
            #expect(item.path.hasPrefix("/"))
            #expect(item.path == "/" || !item.path.hasSuffix("/"))
        }
    }

    @Test func ownerDepthOneOfFootage() throws {
        let fixture = try Fixture.named("004")
        let items = try Multistatus.parse(fixture.body, rootHref: "/remote.php/dav/files/alice", path: nil)
        try #require(items.count == 3)
        let folder = items[0]
        #expect(folder.path == "/Footage")
        #expect(folder.isFolder)
        #expect(folder.fileID == 97)
        #expect(folder.etag == "\"6b036d50e5d59\"")
        #expect(folder.size == 13_631_488)
        #expect(folder.permissionLetters == "RGDNVCK")
        #expect(folder.permissions == [.read, .share, .delete, .rename, .move, .createFile, .createFolder])
        #expect(folder.checksums.isEmpty)
        #expect(folder.shareTypes == [0])
        #expect(folder.sharePermissions == .all)
        #expect(folder.mountType == "")
        #expect(!folder.isMountRoot)
        #expect(folder.ownerDisplayName == "Alice Example")

        let clip = items[1]
        #expect(clip.path == "/Footage/clip1.mp4")
        #expect(clip.name == "clip1.mp4")
        #expect(!clip.isFolder)
        #expect(clip.fileID == 98)
        #expect(clip.size == 1_048_576)
        #expect(clip.etag == "\"986eda456cbd139dbed696017178aa9e\"")
        #expect(clip.contentType == "video/mp4")
        #expect(clip.checksums == ["SHA1:863468cacbe8b6af99b6e6248ca740dba99974ee"])
        #expect(clip.permissions?.contains(.write) == true)
        #expect(clip.sharePermissions?.rawValue == 19)
        #expect(clip.modified == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(items[2].fileID == 104)
    }

    @Test func readOnlyRecipientSeesSameIdentityAndFewerPermissions() throws {
        let owner = try Multistatus.parse(
            Fixture.named("004").body, rootHref: "/remote.php/dav/files/alice", path: nil)
        let recipient = try Multistatus.parse(
            Fixture.named("006").body, rootHref: "/remote.php/dav/files/bob", path: nil)
        let ownerClip = try #require(owner.first { $0.fileID == 98 })
        let bobClip = try #require(recipient.first { $0.fileID == 98 })
        #expect(bobClip.path == ownerClip.path)
        #expect(bobClip.etag == ownerClip.etag)
        #expect(bobClip.size == ownerClip.size)
        #expect(bobClip.checksums == ownerClip.checksums)
        #expect(bobClip.permissionLetters == "SG")
        #expect(bobClip.permissions == [.read, .shared])
        #expect(bobClip.permissions?.canModifyContent == false)

        let root = try Multistatus.parse(Fixture.named("005").body, rootHref: "/remote.php/dav/files/bob", path: nil)
        #expect(root[0].permissionLetters == "SGDN")
        #expect(root[0].isMountRoot)
        #expect(root[0].mountType == "shared")
        #expect(root[0].sharePermissions == .read)
    }

    @Test func bobsRootListsTheShareRootAsAChild() throws {
        let items = try Multistatus.parse(Fixture.named("007").body, rootHref: "/remote.php/dav/files/bob", path: nil)
        #expect(items[0].path == "/")
        let footage = try #require(items.first { $0.path == "/Footage" })
        #expect(footage.permissionLetters == "SGDNV")
        #expect(footage.isFolder)
    }

    @Test func allpropHasNoOwncloudProperties() throws {
        for name in ["009", "010"] {
            let items = try Multistatus.parse(
                Fixture.named(name).body, rootHref: "/remote.php/dav/files/alice", path: nil)
            #expect(items.allSatisfy { $0.fileID == nil && $0.permissions == nil })
            #expect(items[0].quotaAvailableBytes == -3)
        }
    }

    @Test func chunkUploadFolderMidway() throws {
        let items = try Multistatus.parse(
            Fixture.named("052").body, rootHref: "/remote.php/dav/uploads/alice/harp-upload-0001", path: nil)
        let chunks = items.filter { Int($0.name) != nil }.map { ($0.name, $0.size) }
        #expect(chunks.map(\.0) == ["1", "2"])
        #expect(chunks.map(\.1) == [5_242_880, 5_242_880])
        #expect(items.first { $0.name == ".file" }?.size == 10_485_760)
    }

    @Test func checksumsAreWhatTheUploaderClaimed() throws {
        let items = try Multistatus.parse(Fixture.named("037").body, rootHref: "/remote.php/dav/files/alice", path: nil)
        #expect(items[0].checksums.count == 1)
        #expect(items[0].checksums[0].hasPrefix("SHA1:"))
    }

    @Test func quotaAndLocks() throws {
        let quota = try Multistatus.parse(Fixture.named("073").body, rootHref: "/remote.php/dav/files/alice", path: nil)
        #expect(quota[0].quotaAvailableBytes == 1_048_576)
        #expect(quota[0].quotaUsedBytes == 26_214_452)
        let locked = try Multistatus.parse(Fixture.named("059").body, rootHref: "/remote.php/dav/files/bob", path: nil)
        #expect(locked[0].isLocked)
        #expect(locked[0].lockOwner == "alice")
        let before = try Multistatus.parse(
            Fixture.named("057").body, rootHref: "/remote.php/dav/files/alice", path: nil)
        #expect(!before[0].isLocked)
    }

    @Test func versionsListing() throws {
        let items = try Multistatus.parse(
            Fixture.named("110").body, rootHref: "/remote.php/dav/versions/alice/versions/111", path: nil)
        let versions = items.filter { !$0.isFolder }.map(\.name)
        #expect(versions.contains("1700000200"))
        #expect(versions.count >= 2)
    }

    @Test func dotFoldersAreListed() throws {
        let items = try Multistatus.parse(Fixture.named("116").body, rootHref: "/remote.php/dav/files/alice", path: nil)
        #expect(items.contains { $0.path == "/Footage/.harp" && $0.isFolder })
    }

    @Test func prefixesAreNotTrusted() throws {
        // Same document with other prefixes: parsing goes by namespace URI.
        let original = try Fixture.named("003").bodyText
        let renamed = original.replacingOccurrences(of: "d:", with: "dav:")
            .replacingOccurrences(of: "xmlns:d=", with: "xmlns:dav=")
            .replacingOccurrences(of: "oc:", with: "own:")
            .replacingOccurrences(of: "xmlns:oc=", with: "xmlns:own=")
        let a = try Multistatus.parse(Data(original.utf8), rootHref: "/remote.php/dav/files/alice", path: nil)
        let b = try Multistatus.parse(Data(renamed.utf8), rootHref: "/remote.php/dav/files/alice", path: nil)
        #expect(a == b)
        #expect(a[0].fileID == 97)
        // A document that uses the "oc" prefix for a foreign namespace yields no fileid.
        let foreign = original.replacingOccurrences(of: "http://owncloud.org/ns", with: "urn:other")
        let c = try Multistatus.parse(Data(foreign.utf8), rootHref: "/remote.php/dav/files/alice", path: nil)
        #expect(c[0].fileID == nil)
    }

    @Test func malformedXMLIsAnError() {
        #expect(throws: NextcloudError.self) {
            _ = try Multistatus.parse(
                Data("<d:multistatus xmlns:d=\"DAV:\"><d:response>".utf8), rootHref: "/", path: nil)
        }
        #expect(throws: NextcloudError.self) {
            _ = try Multistatus.parse(Data("{\"json\":true}".utf8), rootHref: "/", path: nil)
        }
    }

    @Test func hrefMapping() {
        #expect(
            Multistatus.relativePath(href: "/remote.php/dav/files/alice/", rootHref: "/remote.php/dav/files/alice")
                == "/")
        #expect(
            Multistatus.relativePath(
                href: "/remote.php/dav/files/alice/A%20B/c%2Bd", rootHref: "/remote.php/dav/files/alice")
                == "/A B/c+d")
        #expect(
            Multistatus.relativePath(
                href: "https://h/x/remote.php/dav/files/alice/f", rootHref: "/x/remote.php/dav/files/alice")
                == "/f")
        #expect(
            Multistatus.relativePath(href: "/remote.php/dav/files/alicex/f", rootHref: "/remote.php/dav/files/alice")
                == nil)
    }
}
