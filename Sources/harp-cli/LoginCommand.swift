import ArgumentParser
import Foundation
import HarpClient
import NextcloudClient

/// `harp-cli login URL`: gets an app password and stores it 0600.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Log in to a Nextcloud server and store an app password.",
        discussion: """
            Without credentials, starts Nextcloud's Login Flow v2: open the printed URL in a browser, \
            grant access, and harp stores the app password it receives. With --password, the account \
            password is exchanged once for an app password and then forgotten. With --app-password, \
            that app password is checked and stored.

            Examples:
              harp-cli login https://cloud.example.com
              harp-cli login https://cloud.example.com --user alice --app-password "$APP_PASSWORD"
              printf '%s\n' "$PASSWORD" | harp-cli login https://cloud.example.com --user alice --password -
            """)

    @Argument(help: ArgumentHelp("The server's base URL, e.g. https://cloud.example.com.", valueName: "url"))
    var server: String

    @Option(help: "User name (needed with --password or --app-password).")
    var user: String?

    @Option(name: .customLong("app-password"), help: "An existing app password to store (checked first).")
    var appPassword: String?

    @Option(
        help:
            "The account password, exchanged once for an app password and not stored; `-` reads it from standard input."
    )
    var password: String?

    @Option(help: "Give up the browser login after this many seconds.")
    var timeout: Int = 1200

    @OptionGroup var config: ConfigOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runReportingErrors {
            let url = try Credentials.parseServerURL(server)
            var credentials: Credentials
            switch (user, appPassword, password) {
            case (let user?, let appPassword?, nil):
                credentials = Credentials(server: url, user: user, appPassword: appPassword)
            case (let user?, nil, let password?):
                let secret = password == "-" ? (readLine(strippingNewline: true) ?? "") : password
                guard !secret.isEmpty else { throw UsageError(description: "the password is empty") }
                credentials = try await authenticator(url).exchangePassword(user: user, password: secret)
            case (nil, nil, nil):
                credentials = try await loginFlow(url)
            default:
                throw UsageError(
                    description:
                        "use --user with exactly one of --app-password or --password, or neither for a browser login")
            }
            let client = NextcloudClient(
                credentials: credentials, options: config.transportOptions, logger: config.logger)
            let who = try await client.currentUser()
            // WebDAV paths use the user id, which differs from the login name on some servers.
            credentials.userID = who.id
            try config.store.save(credentials)
            if output.json {
                printJSONLine([
                    "event": "login", "server": url.absoluteString, "user": who.id,
                    "displayName": who.displayname ?? "",
                ])
            } else {
                print("Logged in to \(url.absoluteString) as \(who.id)\(who.displayname.map { " (\($0))" } ?? "").")
                print("Credentials stored in \(config.store.fileURL.path) (mode 0600).")
            }
        }
    }

    private func authenticator(_ url: URL) -> Authenticator {
        Authenticator(server: url, options: config.transportOptions, logger: config.logger)
    }

    private func loginFlow(_ url: URL) async throws -> Credentials {
        let auth = authenticator(url)
        let flow = try await auth.startLoginFlow()
        if output.json {
            printJSONLine(["event": "login-url", "url": flow.login])
        } else {
            print("Open this URL in a browser and grant access:\n\n  \(flow.login)\n")
            print("Waiting for the grant (up to \(timeout) s)…")
        }
        let result = try await auth.waitForLoginFlow(flow, timeout: .seconds(max(timeout, 1)))
        return Credentials(server: url, user: result.loginName, appPassword: result.appPassword)
    }
}
