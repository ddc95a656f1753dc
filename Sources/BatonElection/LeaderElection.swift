public import BatonCore

/// One master candidate's view of the election: a pure state machine that takes events (each with
/// `now` on the monotonic clock) and returns the actions its shell must carry out.
///
/// How a term is won and kept:
/// - A standby reads the leadership record every `pollInterval`. It campaigns when the record is
///   vacant, when the holder's process is known dead (its shell acquired the holder's member lock:
///   the crash fast path), or when the record has not changed for a whole `leaseDuration` on the
///   standby's own clock (the holder hung or lost the store).
/// - A leader renews every `renewInterval`. Its lease lasts `leaseDuration` from the *start* of
///   its last successful renewal (or campaign); when that passes without a renewal it stops acting
///   as leader at once (`leadershipRevoked`) and tries to end its term in the store. It gives up
///   `stepDownMargin` before the lease runs out, so that it has stopped before any standby, whose
///   shell may run a little late or early, can have counted the whole lease.
/// - A renewal refused as fenced means a newer epoch exists: the leader steps down at once.
///
/// Guarantees: a standby can only win after the leader's own deadline has passed, because it
/// starts measuring the lease when it *sees* a renewal, which is after that renewal started; and
/// the store refuses every write of an epoch that is not current, so two leaders never both write.
/// Not guaranteed: that a paused leader *knows* it lost the lease before it next runs; whatever it
/// does before its first fenced write is refused by the store and by task executors.
public struct LeaderElection: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// How long a term lasts without a successful renewal.
        public var leaseDuration: Duration
        /// How often the leader renews.
        public var renewInterval: Duration
        /// How often a standby reads the leadership record.
        public var pollInterval: Duration
        /// How long before its lease runs out a leader that could not renew stops acting as leader
        /// (default: a tenth of the lease).
        public var stepDownMargin: Duration

        public init(
            leaseDuration: Duration, renewInterval: Duration, pollInterval: Duration? = nil, stepDownMargin: Duration? = nil
        ) {
            precondition(renewInterval < leaseDuration, "renewInterval must be shorter than leaseDuration")
            self.leaseDuration = leaseDuration
            self.renewInterval = renewInterval
            self.pollInterval = pollInterval ?? renewInterval
            self.stepDownMargin = stepDownMargin ?? leaseDuration / 10
        }

        /// How long a leader acts on one successful renewal.
        var leaderLease: Duration { leaseDuration - stepDownMargin }
    }

    /// What the shell must do. Actions are returned in the order they must be carried out.
    public enum Action: Hashable, Sendable {
        /// Read the leadership record and report it with `observed(_:now:)`.
        case readLeadership
        /// Watch the process of this member (nil: watch no one) and report its death with
        /// `holderProcessDied(_:incarnation:now:)` (for a process lock: while still holding it).
        case watchHolder(MemberID?)
        /// Run a campaign in the store (`LeadershipRules.campaign`) and report `campaignCompleted`.
        case campaign(CampaignExpectation)
        /// Renew the lease of `epoch` (a fenced write) and report `renewCompleted`.
        case renew(Epoch)
        /// End the term of `epoch` in the store (a fenced write); the outcome needs no report.
        case relinquish(Epoch, TermEndReason)
        /// Start acting as leader of `epoch`.
        case leadershipGranted(Epoch)
        /// Stop acting as leader of `epoch` at once.
        case leadershipRevoked(Epoch, StepDownReason)
    }

    public enum CampaignResult: Hashable, Sendable {
        case won(LeadershipRecord)
        case lost(current: LeadershipRecord?)
        /// The store failed; the outcome is unknown (the record is read again at the next poll).
        case failed
    }

    public enum RenewResult: Hashable, Sendable {
        case renewed
        case fenced(current: Epoch)
        /// The store failed; retried at the next renew interval while the lease lasts.
        case failed
    }

    /// The role as the shell and `baton status` see it.
    public enum Role: Hashable, Sendable {
        case idle, standby, campaigning, leader(Epoch), stopped
    }

    private struct Observation: Hashable, Sendable {
        var record: LeadershipRecord?
        /// When this record (epoch, holder, renewals) was first seen.
        var firstSeenAt: MonotonicInstant
    }

    private struct Leading: Hashable, Sendable {
        var epoch: Epoch
        /// Start of the last successful renewal (or of the winning campaign).
        var leaseStart: MonotonicInstant
        var lastRenewAttempt: MonotonicInstant
        var renewInFlightSince: MonotonicInstant?
    }

    private enum State: Hashable, Sendable {
        case idle
        case following(Observation?, lastReadAt: MonotonicInstant?, readInFlight: Bool)
        case campaigning(Observation?, startedAt: MonotonicInstant)
        case leading(Leading)
        case stopped
    }

    public let identity: LeaderIdentity
    public let configuration: Configuration
    private var state: State = .idle
    private var watched: MemberID?

    public init(identity: LeaderIdentity, configuration: Configuration) {
        self.identity = identity
        self.configuration = configuration
    }

    public var role: Role {
        switch state {
        case .idle: .idle
        case .following: .standby
        case .campaigning: .campaigning
        case .leading(let leading): .leader(leading.epoch)
        case .stopped: .stopped
        }
    }

    /// The epoch this candidate leads, if it is leader.
    public var leaderEpoch: Epoch? {
        if case .leading(let leading) = state { return leading.epoch }
        return nil
    }

    /// When the lease of the term this candidate leads runs out (nil: it leads no term): past it,
    /// the leader must not act, whether or not it has run since.
    public var leaseExpiry: MonotonicInstant? {
        if case .leading(let leading) = state { return leading.leaseStart + configuration.leaderLease }
        return nil
    }

    /// The member whose process lock the shell should be watching.
    public var watchedMember: MemberID? { watched }

    /// When the shell must call `tick` next at the latest (nil: only events matter).
    public var nextDeadline: MonotonicInstant? {
        switch state {
        case .idle, .stopped, .campaigning: return nil
        case .following(_, let lastReadAt, let readInFlight):
            if readInFlight { return nil }
            return lastReadAt.map { $0 + configuration.pollInterval }
        case .leading(let leading):
            let expiry = leading.leaseStart + configuration.leaderLease
            if leading.renewInFlightSince != nil { return expiry }
            return min(expiry, leading.lastRenewAttempt + configuration.renewInterval)
        }
    }

    // MARK: events

    /// The candidate starts: it reads the record before anything else.
    public mutating func start(now: MonotonicInstant) -> [Action] {
        guard case .idle = state else { preconditionFailure("start() called twice") }
        state = .following(nil, lastReadAt: now, readInFlight: true)
        return [.readLeadership]
    }

    /// Time passed: poll, renew, or notice that the lease ran out.
    public mutating func tick(now: MonotonicInstant) -> [Action] {
        switch state {
        case .idle, .stopped, .campaigning:
            return []
        case .following(let observation, let lastReadAt, let readInFlight):
            guard !readInFlight, lastReadAt.map({ now >= $0 + configuration.pollInterval }) ?? true else { return [] }
            state = .following(observation, lastReadAt: now, readInFlight: true)
            return [.readLeadership]
        case .leading(var leading):
            if now >= leading.leaseStart + configuration.leaderLease {
                return stepDown(leading.epoch, .leaseExpired, now: now)
            }
            guard leading.renewInFlightSince == nil, now >= leading.lastRenewAttempt + configuration.renewInterval
            else { return [] }
            leading.renewInFlightSince = now
            leading.lastRenewAttempt = now
            state = .leading(leading)
            return [.renew(leading.epoch)]
        }
    }

    /// The shell read the leadership record.
    public mutating func observed(_ record: LeadershipRecord?, now: MonotonicInstant) -> [Action] {
        switch state {
        case .following(let previous, _, _):
            return follow(record, previous: previous, now: now)
        case .campaigning, .leading, .idle, .stopped:
            return []
        }
    }

    /// Reading the leadership record failed; the next poll tries again.
    public mutating func readFailed(now: MonotonicInstant) -> [Action] {
        if case .following(let observation, _, _) = state {
            state = .following(observation, lastReadAt: now, readInFlight: false)
        }
        return []
    }

    /// The process of `member` is dead. Either the shell holds that member's process lock right now
    /// and keeps holding it until the actions returned here are carried out (`incarnation` nil), or
    /// the supervisor that reaped process `incarnation` of `member` certified its death: then only
    /// a holder of that very incarnation is replaced.
    public mutating func holderProcessDied(_ member: MemberID, incarnation: Incarnation? = nil, now: MonotonicInstant) -> [Action] {
        guard case .following(let observation, _, _) = state, let holder = observation?.record?.holder, holder.member == member,
            incarnation.map({ $0 == holder.incarnation }) ?? true
        else {
            return []
        }
        state = .campaigning(observation, startedAt: now)
        return [.campaign(.holderDead(member: member, incarnation: incarnation))]
    }

    /// The leadership record changed in the store (a watch said so): a standby reads it now
    /// instead of at its next poll.
    public mutating func leadershipChanged(now: MonotonicInstant) -> [Action] {
        guard case .following(let observation, _, false) = state else { return [] }
        state = .following(observation, lastReadAt: now, readInFlight: true)
        return [.readLeadership]
    }

    public mutating func campaignCompleted(_ result: CampaignResult, now: MonotonicInstant) -> [Action] {
        guard case .campaigning(let observation, let startedAt) = state else { return [] }
        switch result {
        case .won(let record):
            precondition(record.holder == identity, "a won campaign must name this candidate")
            var actions: [Action] = []
            if watched != nil {
                watched = nil
                actions.append(.watchHolder(nil))
            }
            if now >= startedAt + configuration.leaderLease {
                // The store was so slow that the new term's lease is over before it began: end it
                // at once rather than act on it.
                state = .following(nil, lastReadAt: now, readInFlight: true)
                return actions + [.relinquish(record.epoch, .leaseExpired), .readLeadership]
            }
            state = .leading(
                Leading(epoch: record.epoch, leaseStart: startedAt, lastRenewAttempt: startedAt, renewInFlightSince: nil))
            actions.append(.leadershipGranted(record.epoch))
            return actions
        case .lost(let current):
            state = .following(observation, lastReadAt: now, readInFlight: false)
            return follow(current, previous: observation, now: now)
        case .failed:
            // The store failed (full, busy, I/O): try again at the next poll, not at once, so a
            // broken store is not hammered and other inputs (shutdown) are still handled.
            state = .following(observation, lastReadAt: now, readInFlight: false)
            return []
        }
    }

    public mutating func renewCompleted(_ result: RenewResult, epoch: Epoch, now: MonotonicInstant) -> [Action] {
        guard case .leading(var leading) = state, leading.epoch == epoch, let started = leading.renewInFlightSince
        else { return [] }
        leading.renewInFlightSince = nil
        switch result {
        case .renewed:
            leading.leaseStart = max(leading.leaseStart, started)
            state = .leading(leading)
            // The renewal may have landed after the lease ran out: a standby may already be campaigning.
            if now >= leading.leaseStart + configuration.leaderLease {
                return stepDown(epoch, .leaseExpired, now: now)
            }
            return []
        case .fenced(let current):
            return stepDown(epoch, .fenced(current: current), now: now)
        case .failed:
            state = .leading(leading)
            if now >= leading.leaseStart + configuration.leaderLease {
                return stepDown(epoch, .leaseExpired, now: now)
            }
            return []
        }
    }

    /// The process is shutting down: a leader ends its term; everyone stops campaigning.
    public mutating func resign(now: MonotonicInstant) -> [Action] {
        defer { state = .stopped }
        var actions: [Action] = []
        if case .leading(let leading) = state {
            actions += [.leadershipRevoked(leading.epoch, .resigned), .relinquish(leading.epoch, .resigned)]
        }
        if watched != nil {
            watched = nil
            actions.append(.watchHolder(nil))
        }
        return actions
    }

    // MARK: decisions

    private mutating func stepDown(_ epoch: Epoch, _ reason: StepDownReason, now: MonotonicInstant) -> [Action] {
        state = .following(nil, lastReadAt: now, readInFlight: true)
        var actions: [Action] = [.leadershipRevoked(epoch, reason)]
        if let endReason = reason.termEndReason { actions.append(.relinquish(epoch, endReason)) }
        actions.append(.readLeadership)
        return actions
    }

    private mutating func follow(_ record: LeadershipRecord?, previous: Observation?, now: MonotonicInstant)
        -> [Action]
    {
        let unchanged =
            previous.map {
                $0.record?.epoch == record?.epoch && $0.record?.holder == record?.holder
                    && $0.record?.renewals == record?.renewals
            } ?? false
        let observation = Observation(record: record, firstSeenAt: unchanged ? previous!.firstSeenAt : now)
        var actions: [Action] = []
        let holderMember = record?.holder?.member
        if holderMember != watched, holderMember != identity.member {
            watched = holderMember
            actions.append(.watchHolder(holderMember))
        }
        guard let record, let holder = record.holder else {
            state = .campaigning(observation, startedAt: now)
            return actions + [.campaign(.vacant(epoch: record?.epoch ?? .none))]
        }
        if holder.member == identity.member {
            // The record names this member but not this process (or a campaign of ours landed after
            // we gave up on it): we hold our own member lock, so that holder is dead or was never live.
            state = .campaigning(observation, startedAt: now)
            return actions + [.campaign(.holderDead(member: identity.member))]
        }
        if now >= observation.firstSeenAt + configuration.leaseDuration {
            state = .campaigning(observation, startedAt: now)
            return actions + [.campaign(.leaseLapsed(epoch: record.epoch, renewals: record.renewals))]
        }
        state = .following(observation, lastReadAt: now, readInFlight: false)
        return actions
    }
}
