// baton-fuzz: Baton's fuzz targets (`Sources/BatonFuzzTargets`) as one binary.
//
// Built by `tools/fuzz` with `--sanitize=fuzzer` and `-D BATON_LIBFUZZER`, it is a libFuzzer
// binary: libFuzzer's own main runs, and BATON_FUZZ_TARGET names the target every input goes to.
// An input the target rejects with an error that is not clear stops the run like a crash.
//
// Built normally (`swift build`), it replays inputs without a sanitizer, and writes the seeds:
//   baton-fuzz TARGET FILE...        feed each file to TARGET, print what came of it
//   baton-fuzz --write-seeds [DIR]   write every target's seeds to DIR/<target>/ (Fuzz/corpus),
//                                    in place of the valid-* and invalid-* files there
import BatonFuzzTargets
import Foundation

#if BATON_LIBFUZZER

private let target: FuzzTarget = {
    let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
    guard let name = ProcessInfo.processInfo.environment["BATON_FUZZ_TARGET"], let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("baton-fuzz: set BATON_FUZZ_TARGET to one of \(names)\n".utf8))
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    _ = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if case .unclear(let error) = target.outcome(of: bytes) {
        fatalError("\(target) rejected an input with an error that is not clear: \(error)")
    }
    return 0
}

#else

@main
struct BatonFuzz {
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        do {
            if arguments.first == "--write-seeds" {
                arguments.removeFirst()
                try await writeSeeds(to: arguments.first ?? "Fuzz/corpus")
            } else if let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count > 1 {
                exit(replay(target, files: Array(arguments.dropFirst())))
            } else {
                usage()
            }
        } catch {
            FileHandle.standardError.write(Data("baton-fuzz: \(error)\n".utf8))
            exit(1)
        }
    }

    static func usage() -> Never {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(
            Data(
                """
                usage: baton-fuzz TARGET FILE...        feed each file to TARGET (\(names))
                       baton-fuzz --write-seeds [DIR]   write the seeds of every target to DIR/<target>/ (default Fuzz/corpus)

                """.utf8))
        exit(2)
    }

    /// Feeds each file; 1 when one of them is rejected with an error that is not clear.
    static func replay(_ target: FuzzTarget, files: [String]) -> Int32 {
        var status: Int32 = 0
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                print("\(file): cannot read")
                status = 1
                continue
            }
            switch target.outcome(of: Array(data)) {
            case .accepted: print("\(file): accepted")
            case .rejected(let message): print("\(file): rejected: \(message)")
            case .unclear(let error):
                print("\(file): rejected with an error that is not clear: \(error)")
                status = 1
            }
        }
        return status
    }

    /// Writes every target's seeds in place of the seeds there (`valid-*`, `invalid-*`; other
    /// files, such as regressions, stay); the repository is the current folder.
    static func writeSeeds(to directory: String) async throws {
        let repository = FileManager.default.currentDirectoryPath
        for target in FuzzTarget.allCases {
            let folder = "\(directory)/\(target.rawValue)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let seeds = try await FuzzSeeds.seeds(for: target, repository: repository)
            for name in try FileManager.default.contentsOfDirectory(atPath: folder) where name.hasPrefix("valid-") || name.hasPrefix("invalid-") {
                try FileManager.default.removeItem(atPath: "\(folder)/\(name)")
            }
            for seed in seeds {
                try Data(seed.bytes).write(to: URL(fileURLWithPath: "\(folder)/\(seed.name)"))
            }
            print("\(folder): \(seeds.count) seeds")
        }
    }
}

#endif
