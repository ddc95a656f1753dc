import BatonCore
import BatonElection
import Foundation
import Testing

@Suite("term end reasons as records spell them")
struct TermEndReasonCodingTests {
    func decode(_ text: String) throws -> TermEndReason {
        try JSONDecoder().decode(TermEndReason.self, from: Data("\"\(text)\"".utf8))
    }

    @Test("the raw value and the case name both read; the raw value is what is written")
    func bothSpellingsRead() throws {
        #expect(try decode("lease-expired") == .leaseExpired)
        #expect(try decode("leaseExpired") == .leaseExpired)
        #expect(try decode("holderDied") == .holderDied)
        #expect(String(decoding: try JSONEncoder().encode(TermEndReason.holderDied), as: UTF8.self) == "\"holder-died\"")
    }

    @Test("any other value is an error that names it")
    func unknownIsAnError() {
        #expect(throws: DecodingError.self) { try decode("crashed") }
        do {
            _ = try decode("crashed")
        } catch {
            #expect("\(error)".contains("'crashed' is not a term end reason"))
        }
    }
}
