import BatonConfig
@testable import BatonREST
import Testing

/// Who may do what over REST: the bearer token guards every request that changes the cluster,
/// and reads off loopback.
@Suite struct RESTAccessTests {
    static let token = "0123456789abcdef0123456789abcdef"

    func access(token: String? = Self.token, rest: String = "127.0.0.1:8081") -> RESTAccess {
        var settings = HAConfiguration.RESTSettings()
        settings.token = token.map { Array($0.utf8) }
        settings.tokenFile = token == nil ? nil : "/etc/baton/rest.token"
        return RESTAccess(settings, restAddress: Endpoint(rest)!)
    }

    func message(_ result: Result<Void, RESTError>) -> String? {
        if case .failure(let error) = result { return error.messages.joined() }
        return nil
    }

    @Test("every method that changes the cluster needs the token; a missing, malformed or wrong one is refused, naming why")
    func mutationsNeedTheToken() {
        let access = access()
        for method in ["POST", "PATCH", "PUT", "DELETE"] {
            #expect(message(access.check(method: method, path: "/v1/jobs", authorization: nil, queryToken: nil))?.contains("/etc/baton/rest.token") == true)
            #expect(message(access.check(method: method, path: "/v1/jobs", authorization: "Bearer nope", queryToken: nil))?.contains("not this group's") == true)
            #expect(message(access.check(method: method, path: "/v1/jobs", authorization: "Basic \(Self.token)", queryToken: nil))?.contains("Bearer <token>") == true)
            // The query parameter is for the event stream's reads, never for a change.
            #expect(message(access.check(method: method, path: "/v1/jobs", authorization: nil, queryToken: Self.token)) != nil)
            #expect(message(access.check(method: method, path: "/v1/jobs", authorization: "Bearer \(Self.token)", queryToken: nil)) == nil)
            #expect(message(access.check(method: method, path: "/v1/jobs", authorization: "bearer  \(Self.token)", queryToken: nil)) == nil)
        }
        // A token that shares a prefix, or is longer, is another token.
        #expect(message(access.check(method: "POST", path: "/v1/jobs", authorization: "Bearer \(Self.token.dropLast())", queryToken: nil)) != nil)
        #expect(message(access.check(method: "POST", path: "/v1/jobs", authorization: "Bearer \(Self.token)0", queryToken: nil)) != nil)
    }

    @Test("without rest.tokenFile no change is accepted, and the refusal says how to add one")
    func noTokenFileNoChanges() {
        let access = access(token: nil)
        #expect(message(access.check(method: "POST", path: "/v1/jobs", authorization: "Bearer anything", queryToken: nil))?.contains("rest.tokenFile") == true)
        #expect(message(access.check(method: "GET", path: "/v1/jobs", authorization: nil, queryToken: nil)) == nil)
    }

    @Test("reads are open on a loopback REST address; elsewhere they need the token (header or access_token), but the dashboard's files do not")
    func readsOffLoopbackNeedTheToken() {
        #expect(message(access().check(method: "GET", path: "/v1/overview", authorization: nil, queryToken: nil)) == nil)
        let remote = access(rest: "10.0.0.5:8081")
        #expect(message(remote.check(method: "GET", path: "/v1/overview", authorization: nil, queryToken: nil))?.contains("not loopback") == true)
        #expect(message(remote.check(method: "GET", path: "/v1/overview", authorization: "Bearer \(Self.token)", queryToken: nil)) == nil)
        #expect(message(remote.check(method: "GET", path: "/v1/events", authorization: nil, queryToken: Self.token)) == nil)
        #expect(message(remote.check(method: "GET", path: "/v1/events", authorization: nil, queryToken: "wrong")) != nil)
        for path in ["/", "/dashboard.js", "/dashboard.css"] {
            #expect(message(remote.check(method: "GET", path: path, authorization: nil, queryToken: nil)) == nil)
        }
    }
}
