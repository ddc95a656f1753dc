import BatonTestKit
import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A plain HTTP/1.1 client for tests against a master's REST address.
struct HTTPTestClient {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        /// The body as a JSON object (an empty one when it is not).
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }

    let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 15
        return URLSession(configuration: configuration)
    }()

    /// `token`: sent as `Authorization: Bearer <token>` (requests that change the cluster need it).
    func request(_ method: String, _ url: String, body: Data? = nil, contentType: String? = nil, token: String? = nil) async throws -> Reply {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.httpBody = body
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields { headers["\(key)".lowercased()] = "\(value)" }
        return Reply(status: http.statusCode, headers: headers, body: data)
    }

    func get(_ url: String) async throws -> Reply { try await request("GET", url) }

    /// Polls `url` until `condition` holds for its reply, or `timeout` passes.
    func waitFor(_ url: String, timeout: Duration = .seconds(30), _ condition: (Reply) -> Bool) async -> Reply? {
        var found: Reply?
        _ = await eventuallyAsync(timeout: timeout, interval: .milliseconds(50)) {
            guard let reply = try? await get(url), condition(reply) else { return false }
            found = reply
            return true
        }
        return found
    }
}
