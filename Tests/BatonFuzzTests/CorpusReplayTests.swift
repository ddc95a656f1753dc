import BatonFuzzTargets
import Foundation
import Testing

/// The committed corpus, replayed through the same entry the libFuzzer binary calls, in the
/// normal build: no input crashes, every rejection is a clear error, and each file does what its
/// name promises.
@Suite("committed fuzz corpus")
struct CorpusReplayTests {
    @Test("every corpus input decodes without a crash, each rejection a clear error, as its name promises", arguments: FuzzTarget.allCases)
    func corpusReplays(_ target: FuzzTarget) throws {
        let files = try Corpus.files(target)
        #expect(files.contains { Corpus.promise($0.name) == .accepted }, "no valid input in the \(target) corpus")
        #expect(files.contains { Corpus.promise($0.name) == .rejected }, "no invalid input in the \(target) corpus")
        for file in files {
            let outcome = target.outcome(of: file.bytes)
            switch (Corpus.promise(file.name), outcome) {
            case (_, .unclear(let error)):
                Issue.record("\(target)/\(file.name) was rejected with an error that is not clear: \(error)")
            case (.accepted, .rejected(let message)):
                Issue.record("\(target)/\(file.name) should be accepted, was rejected: \(message)")
            case (.rejected, .accepted):
                Issue.record("\(target)/\(file.name) should be rejected, was accepted")
            default:
                break
            }
        }
    }

    @Test("the corpus holds every seed the generator makes, and the generator's seeds do what their names promise", arguments: FuzzTarget.allCases)
    func seedsAreCommitted(_ target: FuzzTarget) async throws {
        let committed = Set(try Corpus.files(target).map(\.name))
        for seed in try await FuzzSeeds.seeds(for: target, repository: Corpus.repository.path) {
            #expect(committed.contains(seed.name), "\(target)/\(seed.name) is not committed: run `swift run baton-fuzz --write-seeds`")
            let outcome = target.outcome(of: seed.bytes)
            switch Corpus.promise(seed.name) {
            case .accepted: #expect(outcome == .accepted, "\(target)/\(seed.name): \(outcome)")
            case .rejected:
                guard case .rejected = outcome else {
                    Issue.record("\(target)/\(seed.name) should be rejected with a clear error: \(outcome)")
                    continue
                }
            case .either: Issue.record("the seed \(seed.name) promises nothing: name it valid-... or invalid-...")
            }
        }
    }
}
