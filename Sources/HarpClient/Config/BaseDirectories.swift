public import Foundation

/// The XDG base directories harp's files live under, as the XDG Base Directory specification says: the variable when
/// it is set and not empty, else the default under `$HOME` (not the password database's home, so two processes started
/// with different `HOME` never share a store).
public enum BaseDirectories {
    /// `$HOME`, else the password database's home folder.
    public static func home(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["HOME"], !home.isEmpty { return home }
        return NSHomeDirectory()
    }

    /// `$XDG_DATA_HOME`, else `$HOME/.local/share`.
    public static func dataHome(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data }
        return home(environment) + "/.local/share"
    }

    /// `$XDG_STATE_HOME`, else `$HOME/.local/state`.
    public static func stateHome(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return state }
        return home(environment) + "/.local/state"
    }
}
