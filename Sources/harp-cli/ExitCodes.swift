import ArgumentParser
import ChunkStore
import Foundation
import HarpClient
import NextcloudClient
import SwarmKit

/// The exit codes of `harp-cli`, in one place (documented in docs/cli.md).
enum HarpExitCode: Int32 {
    /// Success.
    case ok = 0
    /// Any failure without a more specific code (locked, quota, conflict, changed file, bad answer, local I/O).
    case failure = 1
    /// Wrong usage: a bad argument or option.
    case usage = 2
    /// Authentication failed: bad or revoked app password, throttled address, or not logged in.
    case authFailure = 3
    /// Not found, or no access (Nextcloud answers 404 for both), or forbidden.
    case notFoundOrNoAccess = 4
    /// A transfer ended before all bytes arrived.
    case partialTransfer = 5
    /// Downloaded bytes did not match what they were supposed to be.
    case verificationFailure = 6
    /// The server could not be reached, TLS failed, or it kept failing with 5xx.
    case networkFailure = 7

    /// The code for an error thrown by a command.
    static func code(for error: any Error) -> HarpExitCode {
        switch error {
        case let error as NextcloudError:
            switch error.kind {
            case .badCredentials, .throttled: .authFailure
            case .notFoundOrNoAccess, .forbidden: .notFoundOrNoAccess
            case .network, .tls, .serverError: .networkFailure
            case .locked, .quotaExceeded, .preconditionFailed, .conflict, .rangeNotSatisfiable, .malformedResponse,
                .localIO, .unexpectedStatus:
                .failure
            }
        case let error as CredentialStoreError:
            switch error {
            case .notLoggedIn: .authFailure
            case .invalidServerURL: .usage
            case .unreadable, .unwritable, .malformed: .failure
            }
        case let error as ChunkStoreError:
            switch error {
            case .chunkMismatch, .rootMismatch, .manifestMismatch: .verificationFailure
            case .incomplete: .partialTransfer
            default: .failure
            }
        case is UsageError: .usage
        case let error as ConfigError:
            switch error {
            case .unreadable, .tooOpen: .failure
            case .syntax, .unknownKey, .wrongType: .usage
            }
        case let error as FetchError:
            switch error {
            case .changedOnServer, .local: .failure
            case .differsFromServer: .verificationFailure
            case .peersOnly: .partialTransfer
            }
        case let error as SwarmError:
            switch error {
            case .noManifest, .noSources: .partialTransfer
            case .changedOnServer: .failure
            case .serverRefused: .notFoundOrNoAccess
            case .server: .networkFailure
            case .serverMismatch: .verificationFailure
            case .storage(let inner): code(for: inner)
            }
        case is DeviceIdentityError: .failure
        // A fixed --listen port another process holds: not a bad argument as such (the same port works once that
        // process is gone), so the general failure.
        case is PeerListenerError: .failure
        case let error as ProofFetchError:
            switch error {
            case .unreachable: .networkFailure
            case .refused(404, _): .notFoundOrNoAccess
            case .refused, .malformed: .failure
            }
        default: .failure
        }
    }
}

/// Runs a command body: on error prints one line to standard error and exits with the
/// error's code. Cancellation (Ctrl-C) is passed through.
func runReportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CancellationError {
        throw error
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("harp-cli: \(error)")
        throw ExitCode(HarpExitCode.code(for: error).rawValue)
    }
}
