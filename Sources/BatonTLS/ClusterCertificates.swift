public import BatonFiles
public import Foundation
import Crypto
import SwiftASN1
import X509

/// A cluster's certificates, for development and tests (`baton certs`): a cluster CA, and for
/// every member a certificate and key naming its id (common name) and role (organizational unit),
/// valid for both ends of a connection, with its addresses as subject alternative names.
///
/// Made from what is given (`now`, the validity): the same inputs give certificates of the same
/// shape; the keys are new each time.
public struct ClusterCertificates: Sendable {
    /// One holder of a certificate.
    public struct Member: Sendable, Hashable {
        /// The id, which names its files (`<id>.pem`, `<id>.key`) and is its certificate's common name.
        public var id: String
        /// `master`, `task-executor` or `client`: what it may claim to be on a connection.
        public var role: String
        /// The host names and IP addresses it is reached at.
        public var hosts: [String]
        /// When its certificate ends, if not at the end of the set's validity (tests make an
        /// expired one this way).
        public var notValidAfter: Date?

        public init(id: String, role: String, hosts: [String], notValidAfter: Date? = nil) {
            self.id = id
            self.role = role
            self.hosts = hosts
            self.notValidAfter = notValidAfter
        }
    }

    /// A certificate and its private key, as PEM text.
    public struct Issued: Sendable {
        public var certificatePEM: String
        public var keyPEM: String
    }

    public let authority: Issued
    public let members: [String: Issued]

    /// The file names a TLS folder holds.
    public static let authorityFile = "ca.pem"
    public static func certificateFile(_ id: String) -> String { "\(id).pem" }
    public static func keyFile(_ id: String) -> String { "\(id).key" }

    /// Issues a CA named after `cluster` and a certificate per member, valid from an hour before
    /// `now` (clocks of hosts differ) for `validity`.
    public static func make(cluster: String, members: [Member], now: Date = Date(), validity: TimeInterval = 365 * 86_400) throws -> ClusterCertificates {
        let notBefore = now.addingTimeInterval(-3600)
        let notAfter = now.addingTimeInterval(validity)
        let authorityKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let authorityName = try DistinguishedName {
            OrganizationName("Baton cluster \(cluster)")
            CommonName("Baton cluster \(cluster) CA")
        }
        let authority = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: authorityKey.publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: authorityName, subject: authorityName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: authorityKey)
        var issued: [String: Issued] = [:]
        for member in members {
            let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
            let subject = try DistinguishedName {
                OrganizationName("Baton cluster \(cluster)")
                OrganizationalUnitName(member.role)
                CommonName(member.id)
            }
            let names = [GeneralName.dnsName(member.id)] + Set(member.hosts).sorted().map(Self.generalName)
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
                notValidBefore: min(notBefore, member.notValidAfter ?? notBefore), notValidAfter: member.notValidAfter ?? notAfter,
                issuer: authorityName, subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames(names)
                },
                issuerPrivateKey: authorityKey)
            issued[member.id] = Issued(certificatePEM: try certificate.serializeAsPEM().pemString, keyPEM: try key.serializeAsPEM().pemString)
        }
        return ClusterCertificates(
            authority: Issued(certificatePEM: try authority.serializeAsPEM().pemString, keyPEM: try authorityKey.serializeAsPEM().pemString),
            members: issued)
    }

    /// An IP address as an address name, anything else as a DNS name.
    private static func generalName(_ host: String) -> GeneralName {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: v4) { ArraySlice($0) }))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: v6) { ArraySlice($0) }))
        }
        return .dnsName(host)
    }

    /// Writes `ca.pem` and every member's `<id>.pem` and `<id>.key` into `directory` (made 0700
    /// when missing), every file 0600. The CA's key is not written: nobody issues more
    /// certificates from a development CA; run `baton certs` again for a new set. Refuses a
    /// folder that holds a `ca.pem` already, so a set in use is never half replaced.
    public func write(to directory: String) throws(FileError) {
        let authorityPath = directory + "/" + Self.authorityFile
        if DurableFiles.exists(authorityPath) {
            throw FileError(path: authorityPath, "a certificate set is there already: remove the folder's files first, or write to another folder")
        }
        try DurableFiles.makeDirectories(directory)
        chmod(directory, 0o700)
        for (id, issued) in members.sorted(by: { $0.key < $1.key }) {
            try Self.writePrivate(issued.keyPEM, to: directory + "/" + Self.keyFile(id))
            try Self.writePrivate(issued.certificatePEM, to: directory + "/" + Self.certificateFile(id))
        }
        // Last: a folder with a ca.pem is complete.
        try Self.writePrivate(authority.certificatePEM, to: authorityPath)
        try DurableFiles.syncDirectory(directory)
    }

    /// A new file, 0600 before its first byte is written (whatever the umask), synced.
    private static func writePrivate(_ text: String, to path: String) throws(FileError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileError(path: path, "cannot create: \(DurableFiles.errnoText())") }
        defer { close(fd) }
        guard fchmod(fd, 0o600) == 0 else { throw FileError(path: path, "cannot make it 0600: \(DurableFiles.errnoText())") }
        try DurableFiles.writeAll(fd, Array(text.utf8), path: path)
        guard fsync(fd) == 0 else { throw FileError(path: path, "cannot fsync: \(DurableFiles.errnoText())") }
    }
}
