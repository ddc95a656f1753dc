import BatonConfig
import BatonCore
import BatonHAStore
import BatonJobGraph
import BatonRPC
import BatonWireMapping

/// What feeding one input to a target came to: accepted, rejected with a clear error (its
/// message), or rejected with an error that is not clear, which is a bug like a crash: the
/// libFuzzer binary stops on it, the tests fail on it.
public enum FuzzOutcome: Hashable, Sendable {
    case accepted
    case rejected(message: String)
    /// The error is not one the target's decoders document, or its message is empty, or (for
    /// configs and job specs) it does not name the file.
    case unclear(error: String)
}

extension FuzzTarget {
    /// Feeds `bytes` (`feed(_:)`) and judges the error when they are rejected.
    public func outcome(of bytes: [UInt8]) -> FuzzOutcome {
        do {
            try feed(bytes)
            return .accepted
        } catch {
            return judge(error)
        }
    }

    /// A rejection with `error`: clear when the error is one this target documents and its
    /// message is not empty.
    func judge(_ error: any Error) -> FuzzOutcome {
        let message = "\(error)"
        guard !message.isEmpty, documents(error) else { return .unclear(error: "\(type(of: error)): \(message)") }
        return .rejected(message: message)
    }

    /// Whether `error` is one of the errors this target's decoders throw, each of which names
    /// what is wrong: the file and key path (ConfigError), the byte offset (BinaryDecodingError),
    /// the namespace and key (HAStoreError), the coding path (DecodingError), the sender (RPCError).
    func documents(_ error: any Error) -> Bool {
        switch self {
        case .frame:
            return error is RPCError || error is FuzzTargetError
        case .wire:
            return error is RPCError || error is WireMappingError || error is FuzzTargetError || error is DecodingError
                || error is JobGraphError || error is BinaryDecodingError
        case .config:
            return (error as? ConfigError)?.file == ConfigTarget.configFile
        case .jobspec:
            return (error as? ConfigError)?.file == ConfigTarget.jobSpecFile
        case .checkpointMetadata:
            return error is BinaryDecodingError
        case .storeValues:
            return error is HAStoreError || error is FuzzTargetError || error is BinaryDecodingError
        }
    }
}
