public import BatonConfig
public import BatonRPC

extension RPCConfiguration {
    /// The connection settings of a group's config (`rpc`), as every client, master and task
    /// executor of the group uses them.
    public init(_ settings: HAConfiguration.RPCSettings) {
        self.init(
            secret: settings.secret, heartbeatInterval: settings.heartbeatInterval, heartbeatTimeout: settings.heartbeatTimeout,
            maxFrameBytes: settings.maxFrameBytes)
    }
}
