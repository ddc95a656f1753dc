import BatonFiles
import Foundation
public import NIOSSL
import SwiftASN1
import X509

/// One member's side of mutual TLS, loaded from a TLS folder (`rpc.tls.dir`): its certificate
/// and key (`<id>.pem`, `<id>.key`) and the cluster CA (`ca.pem`) every peer's certificate must
/// chain to. TLS 1.3 only; both ends present a certificate; an expired one, one from another CA,
/// or none is refused in the handshake.
public struct TLSCredentials: Sendable {
    /// For the side that accepts connections: asks for and verifies the client's certificate.
    public let server: NIOSSLContext
    /// For the side that connects: presents this member's certificate, verifies the server's.
    public let client: NIOSSLContext
    /// For an HTTPS server (REST and the dashboard): the member's certificate, no client
    /// certificate asked for (browsers have none; mutations need the REST token).
    public let httpsServer: TLSConfiguration

    /// Why a TLS folder cannot be used: names the file and what to do.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Loads `identity`'s credentials from `directory`.
    public static func load(directory: String, identity: String) throws(Failure) -> TLSCredentials {
        let hint = "`baton certs --config CONFIG --out \(directory)` makes a set for every member of a config"
        func path(_ name: String) throws(Failure) -> String {
            let path = directory + "/" + name
            guard DurableFiles.exists(path) else { throw Failure(message: "the TLS file \(path) does not exist: \(hint)") }
            return path
        }
        let authorityPath = try path(ClusterCertificates.authorityFile)
        let certificatePath = try path(ClusterCertificates.certificateFile(identity))
        let keyPath = try path(ClusterCertificates.keyFile(identity))
        if let problem = DurableFiles.othersMayAccess(keyPath, what: "TLS key") { throw Failure(message: problem) }
        let authority: [NIOSSLCertificate]
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do { authority = try NIOSSLCertificate.fromPEMFile(authorityPath) } catch {
            throw Failure(message: "\(authorityPath) is not a PEM certificate: \(error)")
        }
        do { chain = try NIOSSLCertificate.fromPEMFile(certificatePath) } catch {
            throw Failure(message: "\(certificatePath) is not a PEM certificate: \(error)")
        }
        do { key = try NIOSSLPrivateKey(file: keyPath, format: .pem) } catch {
            throw Failure(message: "\(keyPath) is not a PEM private key: \(error)")
        }
        guard !authority.isEmpty, let leaf = chain.first else { throw Failure(message: "\(authorityPath) or \(certificatePath) holds no certificate") }
        let named = try? TLSPeerIdentity(leaf)
        guard named?.id == identity else {
            throw Failure(message: "\(certificatePath) is issued to '\(named?.id ?? "?")', not to '\(identity)': \(hint)")
        }

        func mutual(_ configuration: inout TLSConfiguration) {
            configuration.minimumTLSVersion = .tlsv13
            configuration.trustRoots = .certificates(authority)
            // Members are named by their certificates' common names, checked against what they
            // claim in the handshake; addresses are not names (a leader's is in the store).
            configuration.certificateVerification = .noHostnameVerification
        }
        var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        mutual(&server)
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateChain = chain.map { .certificate($0) }
        client.privateKey = .privateKey(key)
        mutual(&client)
        do {
            return TLSCredentials(
                server: try NIOSSLContext(configuration: server), client: try NIOSSLContext(configuration: client),
                httpsServer: TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)))
        } catch {
            throw Failure(message: "the TLS files in \(directory) for '\(identity)' do not make a TLS context: \(error)")
        }
    }
}

/// Who a verified peer certificate names: its common name (the member's id) and organizational
/// unit (its role).
public struct TLSPeerIdentity: Sendable, Hashable, CustomStringConvertible {
    public let id: String
    public let role: String

    public init(_ certificate: NIOSSLCertificate) throws {
        let parsed = try Certificate(derEncoded: try certificate.toDERBytes())
        var id: String?
        var role: String?
        for name in parsed.subject {
            for attribute in name {
                if attribute.type == .RDNAttributeType.commonName { id = String(attribute.value) }
                if attribute.type == .RDNAttributeType.organizationalUnitName { role = String(attribute.value) }
            }
        }
        guard let id, let role else { throw TLSCredentials.Failure(message: "the certificate names no member (common name) or role (organizational unit)") }
        self.id = id
        self.role = role
    }

    public var description: String { "\(role) \(id)" }
}
