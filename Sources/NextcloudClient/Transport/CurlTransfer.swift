internal import CCurl
internal import Foundation

/// Runs one request on a worker thread with that thread's easy handle.
enum CurlTransfer {
    struct Outcome {
        var head: ResponseHead
        var errorBody: Data
        var bytesToSink: Int64
    }

    /// Sets up `handle` for `request`, performs it (blocking this thread) and classifies the result.
    static func run(
        handle: UnsafeMutableRawPointer,
        request: HTTPRequest,
        credentials: BasicCredentials?,
        sink: any ByteSink,
        cancellation: CancellationFlag,
        options: TransportOptions
    ) throws -> Outcome {
        let context = TransferContext(request: request, sink: sink, cancellation: cancellation)
        try context.prepareUpload()
        let userData = Unmanaged.passUnretained(context).toOpaque()

        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(headerList) }
        // No "Expect: 100-continue" round trip before uploads.
        for line in request.headers.map({ "\($0.name.rawName): \($0.value)" }) + ["Expect:"] {
            headerList = curl_slist_append(headerList, line)
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            harp_curl_easy_setopt_string(handle, CURLOPT_URL, request.url.absoluteString)
            harp_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            harp_curl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
            // Only HTTP(S), whatever URL a server hands out (e.g. a Login Flow poll endpoint).
            harp_curl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
            harp_curl_easy_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
            harp_curl_easy_setopt_long(handle, CURLOPT_HTTP_VERSION, harp_curl_http_version_2tls())
            harp_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, options.connectTimeoutMilliseconds)
            harp_curl_easy_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedBytesPerSecond)
            harp_curl_easy_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, options.lowSpeedSeconds)
            harp_curl_easy_setopt_string(handle, CURLOPT_USERAGENT, options.userAgent)
            harp_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress)
            if let caBundle = options.caBundle {
                harp_curl_easy_setopt_string(handle, CURLOPT_CAINFO, caBundle)
            }
            if let caPath = options.caPath {
                harp_curl_easy_setopt_string(handle, CURLOPT_CAPATH, caPath)
            }
            if let credentials {
                harp_curl_easy_setopt_long(handle, CURLOPT_HTTPAUTH, harp_curlauth_basic())
                harp_curl_easy_setopt_string(handle, CURLOPT_USERNAME, credentials.user)
                harp_curl_easy_setopt_string(handle, CURLOPT_PASSWORD, credentials.password)
            }
            if request.acceptCompressed {
                harp_curl_easy_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "")
            }
            if let range = request.range {
                harp_curl_easy_setopt_string(handle, CURLOPT_RANGE, "\(range.first)-\(range.last)")
            }
            switch request.method {
            case "GET":
                harp_curl_easy_setopt_long(handle, CURLOPT_HTTPGET, 1)
            case "HEAD":
                harp_curl_easy_setopt_long(handle, CURLOPT_NOBODY, 1)
            default:
                harp_curl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
            }
            if case .none = request.body {
            } else {
                harp_curl_easy_setopt_long(handle, CURLOPT_UPLOAD, 1)
                harp_curl_easy_setopt_off(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.length))
                harp_curl_easy_setopt_read_callback(handle, readCallback)
                harp_curl_easy_setopt_pointer(handle, CURLOPT_READDATA, userData)
            }
            harp_curl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
            harp_curl_easy_setopt_header_callback(handle, headerCallback)
            harp_curl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, userData)
            harp_curl_easy_setopt_write_callback(handle, writeCallback)
            harp_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, userData)
            harp_curl_easy_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
            harp_curl_easy_setopt_xferinfo_callback(handle, progressCallback)
            harp_curl_easy_setopt_pointer(handle, CURLOPT_XFERINFODATA, userData)
            return withExtendedLifetime(context) { curl_easy_perform(handle) }
        }
        // The handle must not keep pointers into this frame after the transfer.
        harp_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil)
        harp_curl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, nil)

        if cancellation.isCancelled { throw CancellationError() }
        if let sinkError = context.sinkError { throw sinkError }
        if let refusal = context.refusal { throw refusal }
        if let uploadError = context.uploadError { throw uploadError }
        guard code == CURLE_OK else {
            let curlText = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let text = curlText.isEmpty ? String(cString: curl_easy_strerror(code)) : curlText
            let detail = code == CURLE_OPERATION_TIMEDOUT ? "timed out: " + text : text
            throw NextcloudError(classify(code), path: request.displayPath, detail: detail)
        }
        return Outcome(
            head: ResponseHead(status: context.status, headers: context.headers),
            errorBody: context.errorBody,
            bytesToSink: context.bytesToSink)
    }

    /// Network versus TLS failures, by curl's result code.
    static func classify(_ code: CURLcode) -> NextcloudError.Kind {
        switch code {
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND,
            CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
            CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE, CURLE_SSL_SHUTDOWN_FAILED:
            .tls
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            .malformedResponse
        default:
            .network
        }
    }
}

// MARK: - C callbacks (no captures: the context arrives as the user-data pointer)

private func context(_ userData: UnsafeMutableRawPointer?) -> TransferContext? {
    guard let userData else { return nil }
    return Unmanaged<TransferContext>.fromOpaque(userData).takeUnretainedValue()
}

private let headerCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    data, size, count, userData in
    let total = size * count
    guard let context = context(userData), let data else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: total)
    context.receiveHeaderLine(Substring(String(decoding: bytes, as: UTF8.self)))
    return total
}

private let writeCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    data, size, count, userData in
    let total = size * count
    guard let context = context(userData), let data else { return 0 }
    return context.receiveBody(UnsafeRawBufferPointer(start: data, count: total)) ? total : 0
}

private let readCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    buffer, size, count, userData in
    guard let context = context(userData), let buffer else { return Int(CURL_READFUNC_ABORT) }
    let target = UnsafeMutableRawBufferPointer(start: buffer, count: size * count)
    return context.provideUpload(into: target) ?? Int(CURL_READFUNC_ABORT)
}

private let progressCallback:
    @convention(c) (UnsafeMutableRawPointer?, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> Int32 = {
        userData, _, _, _, _ in
        guard let context = context(userData) else { return 1 }
        return context.cancellation.isCancelled ? 1 : 0
    }
