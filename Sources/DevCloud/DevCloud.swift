/// DevCloud: a small Nextcloud-compatible server (WebDAV, OCS, chunked upload v2, Login Flow v2) for the
/// tests and the local demo; never for production. Arrives with issue 4.
public enum DevCloudModule {}
