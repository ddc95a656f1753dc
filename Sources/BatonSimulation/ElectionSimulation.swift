import BatonCore
public import BatonElection

/// A deterministic simulation of a master group's election: candidates running the real
/// `LeaderElection` instances against an in-memory store that applies the real `LeadershipRules`,
/// with member locks, store latency, and faults (kill -9, SIGSTOP/SIGCONT) drawn from a seed.
/// The same seed gives the same history.
///
/// It models what the shells do: each candidate carries out its actions one at a time, awaiting
/// each store operation (ticks and death reports wait meanwhile); a standby's watcher takes the
/// watched member's lock as soon as it is free and keeps it until the candidate has acted on the
/// report; a member restarts only when its lock is free; a paused process does nothing, and on
/// waking first handles what completed while it slept, then a tick.
///
/// Checked after every event (invariant I1 and liveness):
/// - one holder per epoch, epochs 1, 2, 3, ... in the journal;
/// - every accepted renewal or term end carries the current epoch and comes from its holder;
/// - at most one running candidate acts as leader, and it holds the store's current epoch;
/// - when a candidate has been running for long enough, a leader exists within
///   lease + 2 × poll + 4 × the largest store latency + 2 ticks + the watcher's re-check.
public struct ElectionSimulation: Sendable {
    public struct Configuration: Sendable {
        public var seed: UInt64
        public var candidates: Int = 3
        public var duration: Duration = .seconds(60)
        public var election = LeaderElection.Configuration(
            leaseDuration: .seconds(2), renewInterval: .milliseconds(500), pollInterval: .milliseconds(500))
        public var tickInterval: Duration = .milliseconds(10)
        /// Store latency in milliseconds, drawn for applying an operation and again for its reply.
        public var storeLatencyMillis: ClosedRange<Int> = 0...5
        /// Time between faults, in milliseconds.
        public var faultIntervalMillis: ClosedRange<Int> = 300...2_000
        public var restartDelayMillis: ClosedRange<Int> = 50...500
        public var pauseMillis: ClosedRange<Int> = 300...5_000
        /// Chance (percent) that a fault is a kill rather than a pause.
        public var killPercent: Int = 60

        public init(seed: UInt64) { self.seed = seed }
    }

    public struct Report: Sendable {
        public var seed: UInt64
        public var terms: [TermRecord]
        public var violations: [String]
        public var kills = 0
        public var pauses = 0
        /// The longest time without an acting leader while some candidate could have led, in ms.
        public var longestLeaderlessMillis: Double = 0
        /// A line per notable event, for reproducing a failure.
        public var history: [String]
    }

    public let configuration: Configuration
    public init(_ configuration: Configuration) { self.configuration = configuration }

    public func run() -> Report {
        var world = World(configuration)
        return world.run()
    }
}

private enum StoreOperation {
    case read
    case campaign(CampaignExpectation)
    case renew(Epoch)
    case relinquish(Epoch, TermEndReason)
}

private enum StoreReply {
    case read(LeadershipRecord?)
    case campaign(LeadershipRules.CampaignOutcome)
    case renew(Epoch, Result<Void, FencedWrite>)
    case relinquished
}

private enum Event {
    case tick(Int, incarnation: UInt64)
    case apply(Int, incarnation: UInt64, StoreOperation)
    case reply(Int, incarnation: UInt64, StoreReply)
    case fault
    case restart(Int)
    case resume(Int)
    case recheckLocks
}

private enum LockOwner: Equatable {
    case process(Int, incarnation: UInt64)
    case watcher(Int)
}

private struct Candidate {
    var id: MemberID
    var incarnation: UInt64 = 0
    var alive = false
    var paused = false
    var election: LeaderElection?
    /// Actions waiting to be carried out, in order.
    var pending: [LeaderElection.Action] = []
    /// Waiting for the reply of a store operation.
    var busy = false
    var tickWaiting = false
    var deathReports: [MemberID] = []
    /// Member whose lock this candidate's watcher holds until the report is handled.
    var holdingLockOf: MemberID?
    var handlingDeathOf: MemberID?
    var bufferedReply: StoreReply?
    /// Since when it has been alive and running (nil when dead or paused).
    var runningSince: UInt64?
    var lastReport: [MemberID: UInt64] = [:]
}

private struct World {
    let configuration: ElectionSimulation.Configuration
    var random: SeededRandom
    var queue = EventQueue<Event>()
    var now: UInt64 = 0
    var candidates: [Candidate]
    var locks: [MemberID: LockOwner] = [:]
    var record: LeadershipRecord?
    var terms: [Epoch: TermRecord] = [:]
    var violations: [String] = []
    var history: [String] = []
    var report: ElectionSimulation.Report
    var leaderlessSince: UInt64? = 0
    var nextIncarnation: UInt64 = 1

    init(_ configuration: ElectionSimulation.Configuration) {
        self.configuration = configuration
        random = SeededRandom(seed: configuration.seed)
        candidates = (1...configuration.candidates).map { Candidate(id: MemberID(rawValue: "m\($0)")!) }
        report = ElectionSimulation.Report(seed: configuration.seed, terms: [], violations: [], history: [])
    }

    static func ms(_ value: Int) -> UInt64 { UInt64(value) * 1_000_000 }
    var instant: MonotonicInstant { MonotonicInstant(nanoseconds: now) }
    var wall: WallTime { WallTime(millisecondsSince1970: Int64(now / 1_000_000)) }

    mutating func log(_ line: String) {
        history.append("\(Double(now) / 1e6)ms \(line)")
    }

    mutating func violation(_ text: String) {
        if violations.count < 20 { violations.append("at \(Double(now) / 1e6) ms: \(text)") }
    }

    mutating func draw(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }

    mutating func run() -> ElectionSimulation.Report {
        for index in candidates.indices { queue.push(.restart(index), at: Self.ms(draw(0...50))) }
        queue.push(.fault, at: Self.ms(draw(configuration.faultIntervalMillis)) + Self.ms(1_000))
        queue.push(.recheckLocks, at: Self.ms(50))
        let end = UInt64(configuration.duration.nanosecondsClamped)
        while let (time, event) = queue.pop(), time <= end {
            now = time
            handle(event)
            check()
        }
        report.terms = terms.keys.sorted().map { terms[$0]! }
        report.violations = violations
        report.history = history
        return report
    }

    // MARK: events

    mutating func handle(_ event: Event) {
        switch event {
        case .tick(let index, let incarnation):
            guard candidates[index].alive, candidates[index].incarnation == incarnation else { return }
            queue.push(.tick(index, incarnation: incarnation), at: now + UInt64(configuration.tickInterval.nanosecondsClamped))
            guard !candidates[index].paused else { return }
            candidates[index].tickWaiting = true
            drive(index)
        case .apply(let index, let incarnation, let operation):
            let reply = apply(operation, by: index, incarnation: incarnation)
            queue.push(.reply(index, incarnation: incarnation, reply), at: now + Self.ms(draw(configuration.storeLatencyMillis)))
        case .reply(let index, let incarnation, let reply):
            guard candidates[index].alive, candidates[index].incarnation == incarnation else { return }
            if candidates[index].paused {
                candidates[index].bufferedReply = reply
            } else {
                deliver(reply, to: index)
            }
        case .fault:
            inject()
            queue.push(.fault, at: now + Self.ms(draw(configuration.faultIntervalMillis)))
        case .restart(let index):
            restart(index)
        case .resume(let index):
            guard candidates[index].alive, candidates[index].paused else { return }
            candidates[index].paused = false
            candidates[index].runningSince = now
            log("\(candidates[index].id) resumed")
            if let reply = candidates[index].bufferedReply {
                candidates[index].bufferedReply = nil
                deliver(reply, to: index)
            }
            candidates[index].tickWaiting = true
            drive(index)
            offerLocks()
        case .recheckLocks:
            offerLocks()
            queue.push(.recheckLocks, at: now + Self.ms(50))
        }
    }

    mutating func restart(_ index: Int) {
        let id = candidates[index].id
        if locks[id] != nil {  // a watcher holds it for a moment: the new process waits for its lock
            queue.push(.restart(index), at: now + Self.ms(10))
            return
        }
        nextIncarnation += 1
        let incarnation = nextIncarnation
        locks[id] = .process(index, incarnation: incarnation)
        let identity = LeaderIdentity(member: id, incarnation: Incarnation(rawValue: incarnation), address: "\(id)", pid: Int32(index))
        var election = LeaderElection(identity: identity, configuration: configuration.election)
        let actions = election.start(now: instant)
        candidates[index] = Candidate(
            id: id, incarnation: incarnation, alive: true, election: election, pending: actions, runningSince: now)
        log("\(id) started (incarnation \(incarnation))")
        queue.push(.tick(index, incarnation: incarnation), at: now + UInt64(configuration.tickInterval.nanosecondsClamped))
        drive(index)
    }

    mutating func inject() {
        let alive = candidates.indices.filter { candidates[$0].alive && !candidates[$0].paused }
        guard !alive.isEmpty else { return }
        let leaders = alive.filter { candidates[$0].election?.leaderEpoch != nil }
        let target = (!leaders.isEmpty && draw(0...1) == 0) ? leaders[0] : alive[draw(0...(alive.count - 1))]
        if draw(1...100) <= configuration.killPercent {
            kill(target)
        } else {
            report.pauses += 1
            candidates[target].paused = true
            candidates[target].runningSince = nil
            let length = draw(configuration.pauseMillis)
            log("\(candidates[target].id) paused for \(length) ms")
            queue.push(.resume(target), at: now + Self.ms(length))
        }
    }

    mutating func kill(_ index: Int) {
        report.kills += 1
        let id = candidates[index].id
        log("\(id) killed (incarnation \(candidates[index].incarnation))")
        candidates[index].alive = false
        candidates[index].paused = false
        candidates[index].runningSince = nil
        if locks[id] == .process(index, incarnation: candidates[index].incarnation) { locks[id] = nil }
        if let held = candidates[index].holdingLockOf, locks[held] == .watcher(index) { locks[held] = nil }
        queue.push(.restart(index), at: now + Self.ms(draw(configuration.restartDelayMillis)))
        offerLocks()
    }

    // MARK: the shell

    /// Carries out pending actions until one needs the store, then waits for its reply.
    mutating func drive(_ index: Int) {
        while candidates[index].alive, !candidates[index].paused, !candidates[index].busy {
            if !candidates[index].pending.isEmpty {
                let action = candidates[index].pending.removeFirst()
                perform(action, index)
                continue
            }
            if let member = candidates[index].handlingDeathOf {
                // The report is handled: the watcher lets go of the member's lock.
                candidates[index].handlingDeathOf = nil
                candidates[index].holdingLockOf = nil
                if locks[member] == .watcher(index) { locks[member] = nil }
                offerLocks()
                continue
            }
            if !candidates[index].deathReports.isEmpty {
                let member = candidates[index].deathReports.removeFirst()
                candidates[index].handlingDeathOf = member
                candidates[index].pending = candidates[index].election!.holderProcessDied(member, now: instant)
                continue
            }
            if candidates[index].tickWaiting {
                candidates[index].tickWaiting = false
                candidates[index].pending = candidates[index].election!.tick(now: instant)
                if candidates[index].pending.isEmpty { break }
                continue
            }
            break
        }
    }

    mutating func perform(_ action: LeaderElection.Action, _ index: Int) {
        let incarnation = candidates[index].incarnation
        func store(_ operation: StoreOperation) {
            candidates[index].busy = true
            queue.push(.apply(index, incarnation: incarnation, operation), at: now + Self.ms(draw(configuration.storeLatencyMillis)))
        }
        switch action {
        case .readLeadership: store(.read)
        case .campaign(let expectation): store(.campaign(expectation))
        case .renew(let epoch): store(.renew(epoch))
        case .relinquish(let epoch, let reason): store(.relinquish(epoch, reason))
        case .watchHolder: offerLocks()
        case .leadershipGranted(let epoch): log("\(candidates[index].id) leads epoch \(epoch)")
        case .leadershipRevoked(let epoch, let reason): log("\(candidates[index].id) stops leading epoch \(epoch): \(reason)")
        }
    }

    mutating func deliver(_ reply: StoreReply, to index: Int) {
        candidates[index].busy = false
        var election = candidates[index].election!
        let actions: [LeaderElection.Action]
        switch reply {
        case .read(let record): actions = election.observed(record, now: instant)
        case .campaign(.won(let victory)): actions = election.campaignCompleted(.won(victory.record), now: instant)
        case .campaign(.lost(let current)): actions = election.campaignCompleted(.lost(current: current), now: instant)
        case .renew(let epoch, .success): actions = election.renewCompleted(.renewed, epoch: epoch, now: instant)
        case .renew(let epoch, .failure(let fence)):
            actions = election.renewCompleted(.fenced(current: fence.current), epoch: epoch, now: instant)
        case .relinquished: actions = []
        }
        candidates[index].election = election
        candidates[index].pending = actions + candidates[index].pending
        drive(index)
    }

    /// Free member locks go to the running candidates whose watchers wait for them.
    mutating func offerLocks() {
        for index in candidates.indices {
            guard candidates[index].alive, !candidates[index].paused, candidates[index].holdingLockOf == nil,
                let member = candidates[index].election?.watchedMember, locks[member] == nil
            else { continue }
            // A watcher that just reported this member polls before reporting it again.
            if let last = candidates[index].lastReport[member], now < last + Self.ms(200) { continue }
            locks[member] = .watcher(index)
            candidates[index].holdingLockOf = member
            candidates[index].lastReport[member] = now
            candidates[index].deathReports.append(member)
            drive(index)
        }
    }

    // MARK: the store

    mutating func apply(_ operation: StoreOperation, by index: Int, incarnation: UInt64) -> StoreReply {
        let identity = LeaderIdentity(
            member: candidates[index].id, incarnation: Incarnation(rawValue: incarnation), address: "\(candidates[index].id)",
            pid: Int32(index))
        switch operation {
        case .read:
            return .read(record)
        case .campaign(let expectation):
            let outcome = LeadershipRules.campaign(
                by: identity, expecting: expectation, current: record, openTerm: record.flatMap { terms[$0.epoch] },
                leaseMillis: Int64(configuration.election.leaseDuration.milliseconds), now: wall)
            if case .won(let victory) = outcome {
                if case .holderDead(let member) = expectation, locks[member] != .watcher(index), member != identity.member {
                    violation("\(identity.member) campaigned on \(member)'s death without holding its lock")
                }
                if case .holderDead = expectation, let holder = record?.holder,
                    let owner = locks[holder.member], case .process(_, let living) = owner, living == holder.incarnation.rawValue
                {
                    violation("\(identity.member) declared \(holder.member) dead while that process lives")
                }
                record = victory.record
                if let closed = victory.closedTerm { terms[closed.epoch] = closed }
                if terms[victory.openedTerm.epoch] != nil { violation("epoch \(victory.openedTerm.epoch) opened twice") }
                terms[victory.openedTerm.epoch] = victory.openedTerm
                log("store: \(identity.member) wins epoch \(victory.record.epoch) (\(expectation))")
            }
            return .campaign(outcome)
        case .renew(let epoch):
            do {
                let renewed = try LeadershipRules.renew(epoch: epoch, current: record, now: wall)
                if renewed.holder != identity { violation("\(identity.member) renewed epoch \(epoch) held by \(renewed.holder!)") }
                record = renewed
                return .renew(epoch, .success(()))
            } catch {
                return .renew(epoch, .failure(error))
            }
        case .relinquish(let epoch, let reason):
            if let (vacant, closed) = try? LeadershipRules.relinquish(
                epoch: epoch, reason: reason, current: record, openTerm: terms[epoch], now: wall)
            {
                if record?.holder != identity { violation("\(identity.member) ended epoch \(epoch) held by another") }
                record = vacant
                if let closed { terms[closed.epoch] = closed }
                log("store: \(identity.member) ends epoch \(epoch) (\(reason.rawValue))")
            }
            return .relinquished
        }
    }

    // MARK: checks

    mutating func check() {
        let acting = candidates.indices.filter {
            candidates[$0].alive && !candidates[$0].paused && candidates[$0].election?.leaderEpoch != nil
        }
        if acting.count > 1 {
            violation("two running leaders: \(acting.map { "\(candidates[$0].id)@\(candidates[$0].election!.leaderEpoch!)" })")
        }
        for index in acting {
            let epoch = candidates[index].election!.leaderEpoch!
            let holder = record?.holder
            if record?.epoch != epoch || holder?.member != candidates[index].id
                || holder?.incarnation.rawValue != candidates[index].incarnation
            {
                violation("\(candidates[index].id) acts as leader of epoch \(epoch) but the store is at \(record?.epoch ?? .none)")
            }
        }
        if acting.isEmpty {
            if leaderlessSince == nil { leaderlessSince = now }
            let start = leaderlessSince!
            let gap = Double(now - start) / 1e6
            let bound =
                configuration.election.leaseDuration + configuration.election.pollInterval * 2
                + .milliseconds(4 * configuration.storeLatencyMillis.upperBound) + configuration.tickInterval * 2
                + .milliseconds(250)
            let boundNanos = UInt64(bound.nanosecondsClamped)
            let available = candidates.contains { candidate in
                guard let since = candidate.runningSince else { return false }
                return now >= max(since, start) + boundNanos
            }
            if available {
                violation("no leader for \(gap) ms although a candidate ran for longer than \(DurationText.format(bound))")
                leaderlessSince = now  // report each stretch once
            }
        } else if let start = leaderlessSince {
            report.longestLeaderlessMillis = max(report.longestLeaderlessMillis, Double(now - start) / 1e6)
            leaderlessSince = nil
        }
        let epochs = terms.keys.sorted()
        if let last = epochs.last, last.rawValue != UInt64(epochs.count) {
            violation("the journal's epochs are not 1...\(epochs.count): \(epochs)")
        }
    }
}
