import Foundation
import Testing

@testable import SignalingServer

/// The version log's HTTP endpoints are rate-limited per client address, in a bounded table.
@Suite("Version log rate limit")
struct LogRateLimitTests {
    @Test func anAddressPastItsBudgetIsAnswered429AndOtherEndpointsAreNot() async throws {
        let (base, _) = try LogHTTPTests.configuration(name: "limited")
        var configuration = base
        configuration.logRequestsPerSecondPerAddress = 0.01
        configuration.logRequestBurst = 12
        try await withServer(configuration) { server, _, port in
            let http = LogHTTP(base: "http://127.0.0.1:\(port)")
            // The budget is 12: an enrollment challenge costs 10 (answered 404 here: no Nextcloud account), then two
            // plain requests; the next of either kind is refused.
            #expect(try await http.request("POST", "/v1/log/enroll/challenge").status == 404)
            for _ in 0..<2 { #expect(try await http.request("GET", "/v1/log/checkpoint").status == 404) }
            let refused = try await http.request("GET", "/v1/log/checkpoint")
            #expect(refused.status == 429)
            #expect(try await http.request("POST", "/v1/log/append", body: Data(count: 40)).status == 429)
            #expect(server.context.metrics.value("harp_signal_log_rate_limited_total") == 2)
            // Not the server's other endpoints.
            #expect(try await http.request("GET", "/healthz").status == 200)
        }
    }

    @Test func budgetsArePerAddressAndTheTableIsBounded() {
        let limit = AddressRateLimit(rate: 1, burst: 2, capacity: 3)
        let start = ContinuousClock.now
        #expect(limit.allow("198.51.100.1", now: start))
        #expect(limit.allow("198.51.100.1", now: start))
        #expect(!limit.allow("198.51.100.1", now: start))
        // Another address has its own budget; a cost over the burst never passes.
        #expect(limit.allow("198.51.100.2", now: start))
        #expect(!limit.allow("198.51.100.3", cost: 3, now: start))
        // The budget comes back with time.
        #expect(limit.allow("198.51.100.1", now: start + .seconds(1)))
        // A flood of addresses never holds more than the capacity.
        for index in 0..<100 { _ = limit.allow("203.0.113.\(index)", now: start + .seconds(1)) }
        #expect(limit.count <= 3)
    }
}
