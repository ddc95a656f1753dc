public import BatonConfig
import BatonCore
import BatonMetrics
import Hummingbird
public import Logging
import NIOCore
public import Prometheus
public import ServiceLifecycle

/// `GET /metrics` alone, on a task executor's `metrics` address: the Prometheus text exposition
/// of the process's registry. A bind failure is logged and the task executor goes on.
public struct MetricsServer: Service {
    let address: Endpoint
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    public init(address: Endpoint, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.address = address
        self.registry = registry
        self.logger = logger
    }

    public func run() async throws {
        let router = Router()
        router.add(middleware: JSONErrors(logger: logger))
        router.get("metrics") { _, _ in exposition(registry) }
        let app = Application(router: router, configuration: .init(address: .hostname(address.host, port: address.port), serverName: "baton"), logger: logger)
        do {
            try await app.run()
        } catch {
            logger.error("the metrics are not served", metadata: ["baton.metrics": "\(address)", LogKey.error: "\(error)"])
            try await gracefulShutdown()
        }
    }
}

/// The registry's metrics in Prometheus's text format.
func exposition(_ registry: PrometheusCollectorRegistry) -> Response {
    var fields = HTTPFields()
    fields[.contentType] = MetricsExposition.contentType
    return Response(status: .ok, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
}
