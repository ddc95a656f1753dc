/// What a new leader does with the tasks it finds running after a master failover.
///
/// `reconcile` is Baton's protocol: running attempts are adopted, nothing healthy restarts (I2).
/// `restartAll` is a fault for testing the checkers: after reconciling, the new leader restarts
/// every task, as Apache Flink does on a JobManager failover. `baton chaos`, `baton audit`,
/// `baton simulate` and `baton bench failover` must all report it; it is chosen only by the
/// `--takeover` option of a command line, never by the environment.
public enum TakeoverPolicy: String, Sendable, Hashable, CaseIterable, Codable {
    case reconcile
    case restartAll = "restart-all"

    /// Parses `reconcile` or `restart-all`, with an error naming the allowed values.
    public static func parse(_ text: String) throws(TakeoverPolicyError) -> TakeoverPolicy {
        guard let policy = TakeoverPolicy(rawValue: text) else { throw TakeoverPolicyError(text: text) }
        return policy
    }
}

public struct TakeoverPolicyError: Error, Sendable, CustomStringConvertible {
    public var text: String
    public var description: String { "--takeover: '\(text)' is not one of reconcile, restart-all" }
}
