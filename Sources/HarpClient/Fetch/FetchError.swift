/// Why fetching one file failed, beyond the Nextcloud and chunk store errors.
public enum FetchError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The version changed on the server during the download.
    case changedOnServer
    /// A local file could not be read, written or renamed.
    case local(String)
    /// Bytes from peers, each verified against the sidecar's root, differ from the server's at `offset`.
    case differsFromServer(offset: Int64)
    /// The server may not be used (`--no-server`) and peers cannot give the file.
    case peersOnly(String)

    public var description: String {
        switch self {
        case .changedOnServer:
            "the file changed on the server during the download; the partial file was discarded, run get again"
        case .local(let why): why
        case .differsFromServer(let offset):
            "the bytes from peers differ from the server's file at byte \(offset): its sidecar does not describe the "
                + "server's file; nothing was renamed into place (run again without --no-server to fetch it from the "
                + "server, which replaces the sidecar)"
        case .peersOnly(let why): why
        }
    }
}
