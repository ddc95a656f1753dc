import Crypto

/// The proofs of the handshake: HMAC-SHA256 keyed with the cluster secret, over a label naming
/// the side, both nonces (the verifier's first, so a proof cannot be replayed to another
/// connection) and the prover's id.
enum HandshakeProof {
    static func make(secret: [UInt8], side: String, verifierNonce: [UInt8], proverNonce: [UInt8], proverID: String) -> [UInt8] {
        let key = SymmetricKey(data: secret)
        var message = Array("baton-rpc-1|\(side)|".utf8)
        message += verifierNonce
        message += proverNonce
        message += Array(proverID.utf8)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }

    /// Compares in constant time.
    static func verify(_ proof: [UInt8], secret: [UInt8], side: String, verifierNonce: [UInt8], proverNonce: [UInt8], proverID: String) -> Bool {
        let key = SymmetricKey(data: secret)
        var message = Array("baton-rpc-1|\(side)|".utf8)
        message += verifierNonce
        message += proverNonce
        message += Array(proverID.utf8)
        return HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: message, using: key)
    }

    static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}
