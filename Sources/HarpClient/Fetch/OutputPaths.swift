internal import Foundation

/// Where `get` puts a file, decided from names the server sent: every name is checked again here, the destination
/// must lie inside the output folder, and the folders on the way are created without following symbolic links
/// (docs/threat-model.md, "The Nextcloud server").
public struct OutputFolder: Sendable, Hashable {
    /// The folder everything goes under, absolute and without `.`/`..`. The user chose it, so symbolic links in it
    /// are theirs and are followed; below it nothing is.
    public let path: String

    /// The longest suffix `get` adds to a destination (`NAME.harp-part.server.tmp`, the server download's record).
    public static let longestSuffix = ".harp-part.server.tmp"
    /// NAME_MAX of Linux file systems.
    public static let maximumNameBytes = 255

    /// The output folder at `path` (made absolute, without `.`/`..`).
    public init(_ path: String) {
        self.path = URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// The output folder for walking the remote folder `remoteFolder`: `output` when given, else the folder's own
    /// name in the current folder.
    public static func forFolder(_ remoteFolder: String, output: String?) throws -> OutputFolder {
        if let output { return OutputFolder(output) }
        guard let name = remoteFolder.split(separator: "/").last else {
            throw UsageError(description: "\(remoteFolder) has no name to use as a local folder; give -o DEST")
        }
        try check(name: name, remote: remoteFolder)
        return OutputFolder(String(name))
    }

    /// The local path of `remote`, a file found by walking `remoteFolder`: this folder plus the names below
    /// `remoteFolder`, each checked. Throws `OutputPathError` for a name that cannot be a local file name here.
    public func destination(of remote: String, below remoteFolder: String) throws -> String {
        let folderNames = remoteFolder.split(separator: "/")
        let names = remote.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard names.count > folderNames.count, zip(names, folderNames).allSatisfy({ $0 == $1 }) else {
            throw OutputPathError(remote: remote, why: "it does not lie below \(remoteFolder)")
        }
        let relative = names.dropFirst(folderNames.count)
        for name in relative { try Self.check(name: name, remote: remote) }
        let destination = (path == "/" ? "" : path) + "/" + relative.joined(separator: "/")
        // Belt and braces: after resolving `.` and `..` the path must still lie inside the output folder.
        guard URL(fileURLWithPath: destination).standardizedFileURL.path.hasPrefix(path == "/" ? "/" : path + "/")
        else {
            throw OutputPathError(remote: remote, why: "its local path \(destination) would leave \(path)")
        }
        return destination
    }

    /// Whether `relative` (names below `remoteFolder`) runs through a `.harp` folder, whose sidecars are not fetched.
    public static func isInSidecarFolder(_ remote: String, below remoteFolder: String, sidecarFolder: String) -> Bool {
        remote.split(separator: "/").dropFirst(remoteFolder.split(separator: "/").count)
            .contains { $0 == sidecarFolder }
    }

    /// Why `name` cannot be one local file or folder name, as an error naming `remote`.
    public static func check(name: Substring, remote: String) throws {
        let bytes = Array(name.utf8)
        let why: String? =
            if bytes.isEmpty {
                "it has an empty name"
            } else if bytes == [0x2E] || bytes == [0x2E, 0x2E] {
                "one of its names is `.` or `..`"
            } else if bytes.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "/") || $0 == 0x5C }) {
                "one of its names holds `/`, a backslash or a control character"
            } else if bytes.count + longestSuffix.utf8.count > maximumNameBytes {
                "the name \(String(name).prefix(40))… is \(bytes.count) bytes; with the partial file's suffix it is "
                    + "longer than a local file name may be (\(maximumNameBytes) bytes); rename it on the server"
            } else {
                nil
            }
        if let why { throw OutputPathError(remote: remote, why: why) }
    }

    /// Creates the folders between this folder and `destination` (which `destination(of:below:)` gave), one at a
    /// time from a descriptor of this folder with `mkdirat` and `openat(O_NOFOLLOW | O_DIRECTORY)`: a symbolic link
    /// (or a file) in the way, placed there by anyone, is refused, never followed.
    public func createFolders(for destination: String) throws {
        guard destination.hasPrefix(path == "/" ? "/" : path + "/") else {
            throw OutputPathError(remote: destination, why: "it lies outside \(path)")
        }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw OutputPathError(remote: destination, why: "cannot open \(path): \(errnoText())") }
        defer { close(fd) }
        let relative = destination.dropFirst(path == "/" ? 1 : path.count + 1).split(separator: "/").dropLast()
        var walked = path
        for name in relative {
            walked += (walked == "/" ? "" : "/") + name
            if mkdirat(fd, String(name), 0o755) != 0, errno != EEXIST {
                throw OutputPathError(remote: destination, why: "cannot create the folder \(walked): \(errnoText())")
            }
            let next = openat(fd, String(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                let why =
                    errno == ELOOP || errno == ENOTDIR
                    ? "\(walked) is a symbolic link or not a folder; harp does not follow it (remove it and run again)"
                    : "cannot open the folder \(walked): \(errnoText())"
                throw OutputPathError(remote: destination, why: why)
            }
            close(fd)
            fd = next
        }
    }

    private func errnoText() -> String { String(cString: strerror(errno)) }

    /// The local path of one file asked for by name (not found by walking a folder), whether it is finished on the
    /// server or still uploading: its name comes from the remote path and is checked like a name from a listing.
    /// With `output`, the file goes into that folder when several files were asked for (`count` > 1), when `output`
    /// ends with `/`, or when it is an existing folder; else `output` is the file's own name.
    public static func destination(ofFile remote: String, output: String?, count: Int) throws -> String {
        let trimmed = remote.hasSuffix("/") ? String(remote.dropLast()) : remote
        let name = trimmed.split(separator: "/").last.map(String.init) ?? trimmed
        try check(name: Substring(name), remote: remote)
        guard let output else { return name }
        var isDirectory: ObjCBool = false
        if count > 1 || output.hasSuffix("/")
            || (FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) && isDirectory.boolValue)
        {
            return (output.hasSuffix("/") ? String(output.dropLast()) : output) + "/" + name
        }
        return output
    }
}

/// A file `get` will not write where the server's listing or the local folder would put it.
public struct OutputPathError: Error, CustomStringConvertible, Sendable {
    /// The remote path (or the local destination) concerned.
    public let remote: String
    public let why: String

    public var description: String { "refused \(remote): \(why); nothing was written for it" }
}
