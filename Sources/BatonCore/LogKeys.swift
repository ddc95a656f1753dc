/// Metadata keys for structured logs: dotted, namespaced, one constant per concept, so that every
/// module names the same thing the same way (`grep baton.epoch=7` finds a whole term).
public enum LogKey {
    public static let epoch = "baton.epoch"
    public static let master = "baton.master"
    public static let holder = "baton.holder"
    public static let incarnation = "baton.incarnation"
    public static let reason = "baton.reason"
    public static let store = "baton.store"
    public static let backend = "baton.backend"
    public static let pid = "baton.pid"
    public static let member = "baton.member"
    public static let error = "baton.error"
    public static let job = "baton.job"
    public static let attempt = "baton.attempt"
    public static let taskExecutor = "baton.taskexecutor"
}
