import BatonConfig
import Foundation
import Hummingbird

/// Who may do what over REST: requests that change the cluster (every method but GET, HEAD and
/// OPTIONS: submit, cancel, stop, savepoint) carry the bearer token of `rest.tokenFile`
/// (`Authorization: Bearer <token>`); reads are open when the REST address is loopback, and
/// otherwise carry it too (the header, or the `access_token` query parameter for the
/// dashboard's event stream, which cannot send headers). The dashboard's own files are open.
struct RESTAccess: Sendable {
    /// The token, nil when the config names no `rest.tokenFile`: then no request that changes
    /// the cluster is accepted.
    let token: [UInt8]?
    let tokenFile: String?
    /// Reads need no token (the REST address is loopback).
    let readsOpen: Bool

    init(_ settings: HAConfiguration.RESTSettings, restAddress: Endpoint) {
        token = settings.token
        tokenFile = settings.tokenFile
        readsOpen = restAddress.isLoopback
    }

    static let openPaths: Set<String> = ["/", "/dashboard.js", "/dashboard.css"]

    /// Whether a request may go on; the reason when not.
    func check(method: String, path: String, authorization: String?, queryToken: String?) -> Result<Void, RESTError> {
        let reads = ["GET", "HEAD", "OPTIONS"].contains(method)
        if reads && (readsOpen || Self.openPaths.contains(path)) { return .success(()) }
        guard let token else {
            return .failure(
                RESTError(
                    .unauthorized, "\(method) \(path) needs the REST token, and this group's config names no rest.tokenFile: add one (`baton init` creates it)",
                    challenge: true))
        }
        let what = reads ? "reads from a REST address that is not loopback need" : "\(method) \(path) changes the cluster and needs"
        let presented: String?
        if let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                return .failure(RESTError(.unauthorized, "the Authorization header is not `Bearer <token>`", challenge: true))
            }
            presented = String(parts[1]).trimmingCharacters(in: .whitespaces)
        } else {
            presented = reads ? queryToken : nil
        }
        guard let presented else {
            return .failure(
                RESTError(.unauthorized, "\(what) `Authorization: Bearer <token>` with the token in \(tokenFile ?? "rest.tokenFile")", challenge: true))
        }
        guard Self.equalInConstantTime(Array(presented.utf8), token) else {
            return .failure(RESTError(.unauthorized, "the bearer token is not this group's REST token", challenge: true))
        }
        return .success(())
    }

    /// Compares without stopping at the first difference, so the time taken tells nothing of
    /// where the token differs.
    static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// Applies `RESTAccess` to every request.
struct RESTAccessMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let access: RESTAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let verdict = access.check(
            method: request.method.rawValue, path: request.uri.path, authorization: request.headers[.authorization],
            queryToken: request.uri.queryParameters.get("access_token"))
        if case .failure(let refusal) = verdict { throw refusal }
        return try await next(request, context)
    }
}
