public import BatonCore

/// A task executor's view of who leads: it registers with one leader at a time, accepts commands
/// only from the leader it registered with, at that leader's epoch, and never goes back to an
/// older epoch. Pure: the service feeds it what it learns.
public struct TaskExecutorFencing: Sendable {
    public enum Decision: Hashable, Sendable {
        case accept
        case refuse(String)
    }

    /// The epoch of the leader this task executor is registered with, if any.
    public private(set) var registeredEpoch: Epoch?
    /// The newest epoch this task executor has ever seen.
    public private(set) var highestEpoch: Epoch = .none

    public init() {}

    /// The store names a leader at `epoch`: whether to (re)connect to it.
    public func shouldConnect(toLeaderAt epoch: Epoch) -> Bool {
        epoch >= highestEpoch && epoch != registeredEpoch
    }

    /// Registration with the leader of `epoch` completed; false (and no registration) when a
    /// newer epoch was seen meanwhile.
    public mutating func registered(epoch: Epoch) -> Bool {
        guard epoch >= highestEpoch else { return false }
        highestEpoch = epoch
        registeredEpoch = epoch
        return true
    }

    /// The store or a peer showed a newer epoch: commands of older ones are refused from now on.
    public mutating func observed(epoch: Epoch) {
        if epoch > highestEpoch { highestEpoch = epoch }
        if let registered = registeredEpoch, registered < highestEpoch { registeredEpoch = nil }
    }

    public mutating func disconnected() { registeredEpoch = nil }

    /// Whether to carry out a command that carries `epoch`.
    public func admit(commandEpoch epoch: Epoch) -> Decision {
        if epoch < highestEpoch {
            return .refuse("stale epoch \(epoch): this task executor has seen epoch \(highestEpoch)")
        }
        guard let registeredEpoch else { return .refuse("not registered with any leader (command epoch \(epoch))") }
        guard epoch == registeredEpoch else {
            return .refuse("epoch \(epoch) is not the epoch of the leader this task executor registered with (\(registeredEpoch))")
        }
        return .accept
    }
}
