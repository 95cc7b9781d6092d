/// NextcloudClient: the WebDAV and OCS client over libcurl (auth with app passwords, PROPFIND,
/// Range GET, chunked upload v2, sharing API) with typed errors. Arrives with issue 4.
public enum NextcloudClientModule {}
