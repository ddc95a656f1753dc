import BatonAudit
public import BatonConfig
import BatonClient
import BatonCore
public import BatonElection
public import BatonHAStore
import BatonJobGraph
import BatonWire
import Foundation
public import BatonMemberLocks
import BatonTLS
import Hummingbird
import HummingbirdTLS
public import Logging
import NIOCore
public import Prometheus
public import ServiceLifecycle

/// The REST API of one master, on its `rest` address, under `/v1`. Every master answers every
/// request: what the leader knows (jobs, task executors) it asks the leader for over RPC, so a
/// standby answers with the leader's answer, and `503` with `Retry-After` while no leader is
/// known; what the store holds (leadership, terms, failovers, audit) any master reads itself, so
/// those work mid-failover. Errors are JSON in Flink's shape (`{ "errors": [...] }`).
public struct RESTServer: Service {
    public static let version = "0.14.0"
    /// The largest request body accepted (a job spec).
    public static let maxBodyBytes = 1 << 20

    let view: ClusterView
    let host: String
    let port: Int
    let savepoints = SavepointOperations()
    let feed: LiveFeed
    let metrics: PrometheusCollectorRegistry?
    let access: RESTAccess
    var configuration: HAConfiguration { view.configuration }
    var logger: Logger { view.logger }

    /// `metrics`: the process's registry, served at `/metrics` (none: no `/metrics`).
    public init(
        configuration: HAConfiguration, store: HAStore, liveness: any MemberLiveness, identity: LeaderIdentity,
        metrics: PrometheusCollectorRegistry? = nil, logger: Logger
    ) throws {
        guard let master = configuration.masters.first(where: { $0.id == identity.member }) else {
            throw RESTError(.internalServerError, "no master '\(identity.member)' in the config")
        }
        let view = ClusterView(configuration: configuration, store: store, liveness: liveness, identity: identity, logger: logger)
        self.view = view
        host = master.rest.host
        port = master.rest.port
        access = RESTAccess(configuration.rest, restAddress: master.rest)
        feed = LiveFeed { await view.snapshotJSON() }
        self.metrics = metrics
    }

    public func run() async throws {
        let router = Router()
        router.add(middleware: JSONErrors(logger: logger))
        router.add(middleware: RESTAccessMiddleware(access: access))
        routes(router)
        do {
            let configuration = ApplicationConfiguration(address: .hostname(host, port: port), serverName: "baton")
            // With rpc.tls, HTTPS with the master's certificate.
            if let directory = self.configuration.rpc.tlsDirectory {
                let credentials = try TLSCredentials.load(directory: directory, identity: view.identity.member.rawValue)
                let app = Application(
                    router: router, server: try .tls(.http1(), tlsConfiguration: credentials.httpsServer), configuration: configuration, logger: logger)
                try await app.run()
            } else {
                try await Application(router: router, configuration: configuration, logger: logger).run()
            }
        } catch {
            // The master's duties come first: without its REST address it goes on leading or
            // standing by, and says why.
            logger.error("the REST API is not served", metadata: ["baton.rest": "\(host):\(port)", LogKey.error: "\(error)"])
            try await gracefulShutdown()
        }
    }

    // MARK: routes

    func routes(_ router: Router<BasicRequestContext>) {
        if let metrics { router.get("metrics") { _, _ in exposition(metrics) } }
        router.get("/") { _, _ in asset(DashboardPage.html, type: "text/html; charset=utf-8") }
        router.get("dashboard.js") { _, _ in asset(DashboardPage.javascript, type: "text/javascript; charset=utf-8") }
        router.get("dashboard.css") { _, _ in asset(DashboardPage.css, type: "text/css; charset=utf-8") }
        let v1 = router.group("v1")
        v1.get("config") { _, _ in try json(self.view.clusterConfig()) }
        v1.get("overview") { _, _ in try json(RESTViews.overview(try await self.view.leaderStatus(), version: Self.version)) }
        v1.get("jobs") { _, _ in try json(RESTViews.jobList(try await self.view.leaderStatus())) }
        v1.get("jobs/overview") { _, _ in try json(RESTViews.jobsOverview(try await self.view.leaderStatus(), nowMillis: Self.nowMillis())) }
        v1.get("jobs/:jid") { _, context in
            let id = try context.parameters.require("jid")
            guard let job = RESTViews.job(try await self.view.leaderStatus(), id: id, nowMillis: Self.nowMillis()) else { throw RESTError(.notFound, "no job '\(id)'") }
            return try json(job)
        }
        v1.get("jobs/:jid/vertices/:vid") { _, context in
            let (id, vertex) = (try context.parameters.require("jid"), try context.parameters.require("vid"))
            guard let found = RESTViews.vertex(try await self.view.leaderStatus(), job: id, vertex: vertex) else {
                throw RESTError(.notFound, "no vertex '\(vertex)' of a job '\(id)'")
            }
            return try json(found)
        }
        v1.get("jobs/:jid/checkpoints") { _, context in
            let id = try context.parameters.require("jid")
            guard let found = RESTViews.checkpoints(try await self.view.leaderStatus(), job: id) else { throw RESTError(.notFound, "no job '\(id)'") }
            return try json(found)
        }
        v1.get("jobs/:jid/exceptions") { _, context in
            let id = try context.parameters.require("jid")
            guard let found = RESTViews.exceptions(try await self.view.leaderStatus(), job: id) else { throw RESTError(.notFound, "no job '\(id)'") }
            return try json(found)
        }
        v1.post("jobs/:jid/savepoints") { request, context in try await self.triggerSavepoint(request, job: try context.parameters.require("jid")) }
        v1.get("jobs/:jid/savepoints/:triggerid") { _, context in
            let (id, trigger) = (try context.parameters.require("jid"), try context.parameters.require("triggerid"))
            guard let outcome = await self.savepoints.operation(trigger, job: id) else {
                throw RESTError(.notFound, "no savepoint operation '\(trigger)' of job '\(id)' on this master")
            }
            return try json(RESTViews.SavepointStatus(outcome))
        }
        v1.get("events") { _, _ in self.events() }
        v1.get("taskmanagers") { _, _ in try json(RESTViews.taskManagers(try await self.view.leaderStatus())) }
        v1.post("jobs") { request, _ in try await self.submit(request) }
        v1.patch("jobs/:jid") { request, context in
            let id = try context.parameters.require("jid")
            guard request.uri.queryParameters.get("mode") == "cancel" else { throw RESTError(.badRequest, "PATCH /v1/jobs/\(id) takes ?mode=cancel") }
            return try await self.command(.cancel, job: id)
        }
        v1.post("jobs/:jid/stop") { _, context in try await self.command(.stop, job: try context.parameters.require("jid")) }
        v1.get("cluster/leadership") { _, _ in try json(try await self.view.leadership()) }
        v1.get("cluster/terms") { _, _ in try json(ClusterView.Terms(terms: try await self.view.storeReport().terms)) }
        v1.get("cluster/failovers") { _, _ in try json(ClusterView.Failovers(failovers: try await self.view.storeReport().failovers)) }
        v1.get("audit") { _, _ in try json(try await self.view.storeReport(jobs: true)) }
    }

    /// `GET /v1/events`: a snapshot whenever it changes, as server-sent events.
    func events() -> Response {
        let feed = self.feed
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                var sent = 0
                for await snapshot in await feed.subscribe() {
                    sent += 1
                    let data = snapshot.split(separator: "\n", omittingEmptySubsequences: false).map { "data: \($0)" }.joined(separator: "\n")
                    try await writer.write(ByteBuffer(string: "event: snapshot\nid: \(sent)\nretry: 1000\n\(data)\n\n"))
                }
                try await writer.finish(nil)
            })
    }

    static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: what the leader knows

    /// `POST /v1/jobs`: a YAML job spec as the body; 202 with its `jobid`.
    func submit(_ request: Request) async throws -> Response {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maxBodyBytes)
        } catch {
            throw RESTError(.contentTooLarge, "the job spec is larger than \(Self.maxBodyBytes) bytes")
        }
        let text = String(buffer: body)
        // A spec without `id` runs as `?jobid=`, or else under a fresh id (Flink's 32 hex digits).
        let defaultID: JobID
        if let asked = request.uri.queryParameters.get("jobid") {
            guard let id = JobID(rawValue: asked) else { throw RESTError(.badRequest, "jobid: '\(asked)' is not a valid job id") }
            defaultID = id
        } else {
            defaultID = JobID(rawValue: Self.freshID())!
        }
        let graph: JobGraph
        do {
            // A posted spec has no folder: its relative paths resolve against the config's folder.
            graph = try JobSpec.parse(text: text, origin: "request body", directory: configuration.directory, defaultID: defaultID)
        } catch let error as ConfigError {
            throw RESTError(.badRequest, "\(error)")
        }
        var envelope = WireEnvelope()
        envelope.submitJob = .with { $0.jobGraphJson = (try? JSONEncoder().encode(graph)) ?? Data() }
        let reply = try await view.askLeader(envelope)
        guard case .jobAccepted(let accepted) = reply.body else { throw Self.refusal(reply.failure.message) }
        return try json(["jobid": accepted.job], status: .accepted)
    }

    /// `POST /v1/jobs/{jid}/savepoints`: 202 with a `request-id` at once; the savepoint goes on.
    func triggerSavepoint(_ request: Request, job: String) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 << 10)
        if body.readableBytes > 0 {
            guard let options = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
                throw RESTError(.badRequest, "the request body is not a JSON object")
            }
            if let key = options.keys.sorted().first {
                throw RESTError(
                    .badRequest, "\(key): not supported; savepoints go to the config's checkpoints.savepoints folder, and `POST /v1/jobs/\(job)/stop` ends a job")
            }
        }
        guard try await view.leaderStatus().jobs.contains(where: { $0.id == job && !RESTViews.isEnded($0.state) }) else {
            throw RESTError(.notFound, "no running job '\(job)'")
        }
        let trigger = Self.freshID()
        await savepoints.start(job: job, id: trigger)
        var envelope = WireEnvelope()
        envelope.triggerSavepoint = .with { $0.job = job }
        Task { [self] in
            let outcome: SavepointOperations.Outcome
            do {
                let reply = try await view.askLeader(envelope, timeout: .seconds(600))
                if case .savepointCompleted(let completed) = reply.body {
                    outcome = .completed(location: completed.path)
                } else {
                    outcome = .failed(reply.failure.message)
                }
            } catch {
                outcome = .failed("\(error)")
            }
            await savepoints.finish(trigger, outcome)
        }
        return try json(["request-id": trigger], status: .accepted)
    }

    /// A fresh id in Flink's form (32 hex digits), for jobs and savepoint triggers.
    static func freshID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%08x", UInt32.random(in: .min ... .max, using: &generator)) }.joined()
    }

    enum JobCommand { case cancel, stop }

    func command(_ command: JobCommand, job: String) async throws -> Response {
        var envelope = WireEnvelope()
        switch command {
        case .cancel: envelope.cancelJob = .with { $0.job = job }
        case .stop: envelope.stopJob = .with { $0.job = job }
        }
        let reply = try await view.askLeader(envelope)
        guard case .ack = reply.body else { throw Self.refusal(reply.failure.message) }
        return try json([String: String](), status: .accepted)
    }

    /// A leader's refusal with the status it means: an unknown job 404, a job id that runs 409.
    static func refusal(_ message: String) -> RESTError {
        if message.contains("already running") { return RESTError(.conflict, message) }
        if message.contains("no job") || message.contains("no running job") || message.contains("unknown job") { return RESTError(.notFound, message) }
        return RESTError(.badRequest, message)
    }

}

/// An error the API answers with: a status and Flink's `{ "errors": [...] }`.
struct RESTError: Error, CustomStringConvertible {
    var status: HTTPResponse.Status
    var messages: [String]
    var retryAfter: Int?
    /// A 401 that asks for the bearer token (`WWW-Authenticate: Bearer`).
    var challenge = false

    init(_ status: HTTPResponse.Status, _ message: String, retryAfter: Int? = nil, challenge: Bool = false) {
        self.status = status
        self.messages = [message]
        self.retryAfter = retryAfter
        self.challenge = challenge
    }

    var description: String { "\(status.code) \(messages.joined(separator: "; "))" }
}

/// Every error, ours or the router's (an unknown path or method, a body too large), as JSON.
struct JSONErrors: RouterMiddleware {
    typealias Context = BasicRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            var response = try await next(request, context)
            // A dashboard served by one master reads the others' events when it fails over.
            if request.method == .get { response.headers[.accessControlAllowOrigin] = "*" }
            return response
        } catch let error as RESTError {
            var headers = HTTPFields()
            if let retryAfter = error.retryAfter { headers[.retryAfter] = "\(retryAfter)" }
            if error.challenge { headers[.wwwAuthenticate] = "Bearer realm=\"baton\"" }
            return try json(RESTViews.Errors(error.messages), status: error.status, headers: headers)
        } catch let error as HTTPError {
            let message = error.body ?? (error.status == .notFound ? "no such resource: \(request.method) \(request.uri.path)" : error.status.reasonPhrase)
            return try json(RESTViews.Errors([message]), status: error.status)
        } catch {
            logger.warning("a REST request failed", metadata: ["baton.path": "\(request.uri.path)", LogKey.error: "\(error)"])
            return try json(RESTViews.Errors(["\(error)"]), status: .internalServerError)
        }
    }
}

/// A dashboard file.
func asset(_ text: String, type: String) -> Response {
    var fields = HTTPFields()
    fields[.contentType] = type
    return Response(status: .ok, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
}

/// `value` as a JSON response.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var fields = headers
    fields[.contentType] = "application/json"
    return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}
