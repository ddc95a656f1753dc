public import BatonConfig
public import BatonRPC
import BatonTLS

extension RPCConfiguration {
    /// The connection settings of a group's config (`rpc`), as every client, master and task
    /// executor of the group uses them; with `rpc.tls`, the TLS credentials of `identity` (a
    /// member's id, or `client`).
    ///
    /// - Throws: `TLSCredentials.Failure` naming the TLS file that is missing or unusable.
    public init(_ settings: HAConfiguration.RPCSettings, identity: String) throws {
        self.init(
            secret: settings.secret, heartbeatInterval: settings.heartbeatInterval, heartbeatTimeout: settings.heartbeatTimeout,
            maxFrameBytes: settings.maxFrameBytes,
            tls: try settings.tlsDirectory.map { directory throws in try TLSCredentials.load(directory: directory, identity: identity) })
    }
}
