import BatonCheckpointing
import BatonCore
import BatonElection
import BatonExecutionGraph
import BatonJobGraph
import BatonJobManager
import BatonJobMaster
import BatonResourceManager
import BatonTaskSlots

/// One simulated HA cluster, the glue every simulation shares: master candidates running the real
/// `LeaderElection` against a `SimulatedStore`, each leader running the real `JobManager`, task
/// executors running the real `TaskSlotTable`, with simulated tasks, a network and faults, on a
/// virtual clock driven by one seed. `ElectionSimulation`, `ClusterSimulation` and
/// `HASimulation` are configurations of it.
///
/// It models what the shells do: a candidate carries out its election actions one at a time,
/// awaiting each store operation; a leader feeds its JobManager one input at a time and carries
/// out each batch (the writes, awaited, then the effects) before the next; a standby's watcher
/// takes the watched member's lock as soon as it is free; a paused process does nothing, and on
/// waking first handles what completed while it slept. Messages between a leader and a task
/// executor travel over a connection: in order on one connection, in any order across
/// connections; a connection that breaks loses what is in flight, and each end notices after
/// the heartbeat timeout.
struct ClusterWorld {
    var configuration: ClusterConfiguration
    var random: SeededRandom
    var queue = EventQueue<WorldEvent>()
    var now: UInt64 = 0
    var masters: [SimulatedMaster]
    var executors: [SimulatedTaskExecutor]
    var store = SimulatedStore()
    var locks: [MemberID: LockOwner] = [:]
    var violations: [SimulationViolation] = []
    var history: [String] = []
    var leaderlessSince: UInt64? = 0
    var longestLeaderlessMillis: Double = 0
    var nextIncarnation: UInt64 = 1
    var nextConnection: UInt64 = 1
    /// When the store answers again (a stall holds every operation until then).
    var storeStalledUntil: UInt64 = 0
    /// Per connection, when its last message arrives (messages on one connection stay in order).
    var lastArrival: [UInt64: UInt64] = [:]
    /// Links (master, task executor) that are slow until a time.
    var slowLinks: [LinkKey: UInt64] = [:]
    var sinks = SinkOutputs()
    var counts = FaultCounts()
    /// Submissions no leader accepted yet (retried).
    var submissions: [(JobGraph, CompletedCheckpoint?)] = []
    var submitted: Set<JobID> = []
    var deployments: [SimulatedDeployment] = []
    var lastFaultAt: UInt64 = 0
    var openConnections: Set<UInt64> = []
    /// Where each source attempt was at each checkpoint's barrier.
    var barrierPositions: [BarrierKey: Int64] = [:]
    /// When the last barrier sent on each data channel arrives (barriers keep their order).
    var barrierArrivals: [ChannelKey: UInt64] = [:]
    /// Terms that took over jobs from an earlier one.
    var failovers = 0
    var shutDown: JobState?
    var started = false

    init(_ configuration: ClusterConfiguration) {
        self.configuration = configuration
        random = SeededRandom(seed: configuration.seed)
        masters = (1...max(1, configuration.masters)).map { SimulatedMaster(id: MemberID(rawValue: "m\($0)")!) }
        executors = configuration.taskExecutors.map { SimulatedTaskExecutor(resources: $0, table: TaskSlotTable(taskExecutor: $0.id)) }
    }

    static func ms(_ value: Int) -> UInt64 { UInt64(value) * 1_000_000 }
    static func nanos(_ duration: Duration) -> UInt64 { UInt64(max(0, duration.nanosecondsClamped)) }
    var instant: MonotonicInstant { MonotonicInstant(nanoseconds: now) }
    var wall: WallTime { WallTime(millisecondsSince1970: Int64(now / 1_000_000)) }
    var millis: Double { Double(now) / 1e6 }

    mutating func log(_ line: String) {
        guard configuration.keepsHistory else { return }
        history.append("\(millis)ms \(line)")
    }

    mutating func violation(_ invariant: String, _ kind: String, _ text: String) {
        if violations.count < 20 { violations.append(SimulationViolation(invariant: invariant, kind: kind, message: "at \(millis) ms: \(text)")) }
    }

    mutating func draw(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }

    // MARK: the run

    mutating func run() {
        start()
        resume()
    }

    /// The events every run begins with.
    private mutating func start() {
        started = true
        for index in masters.indices { queue.push(.restartMaster(index), at: Self.ms(draw(0...50))) }
        for index in executors.indices { queue.push(.lookForLeader(index, incarnation: 0), at: Self.ms(draw(0...50))) }
        for (graph, at) in configuration.jobs { queue.push(.submit(graph), at: Self.nanos(at)) }
        for fault in configuration.scheduledFaults { queue.push(.scheduled(fault.fault), at: Self.nanos(fault.at)) }
        if configuration.randomFaults > 0 || configuration.electionFaults {
            queue.push(.fault, at: Self.ms(draw(configuration.faultIntervalMillis)) + Self.ms(1_000))
        }
        queue.push(.recheckLocks, at: Self.ms(50))
    }

    /// Runs (on from where it stopped) until the end, or until leaders have written
    /// `stopAfterChangeRecords` change records.
    mutating func resume() {
        if !started { start() }
        let end = Self.nanos(configuration.duration)
        while configuration.stopAfterChangeRecords.map({ store.changeRecordsWritten < $0 }) ?? true, let time = queue.peekTime, time <= end {
            let (_, event) = queue.pop()!
            now = time
            handle(event)
            checkLeadership()
        }
        if queue.peekTime.map({ $0 > end }) ?? true { now = end }
    }

    /// After the end: goes on event by event until the current leader has no write in flight and
    /// no batch waiting, so that its JobManager holds exactly what the store does (at most
    /// `limit` events).
    mutating func settleLeader(limit: Int = 100_000) {
        for _ in 0..<limit {
            guard let shell = masters.compactMap(\.leader).last, !shell.ended, shell.writing || !shell.batches.isEmpty,
                let time = queue.peekTime
            else { return }
            let (_, event) = queue.pop()!
            now = time
            handle(event)
            checkLeadership()
        }
    }

    mutating func handle(_ event: WorldEvent) {
        switch event {
        case .tick(let index, let incarnation):
            guard masters[index].alive, masters[index].incarnation == incarnation else { return }
            queue.push(.tick(index, incarnation: incarnation), at: now + Self.nanos(configuration.tickInterval))
            guard !masters[index].paused else { return }
            masters[index].tickWaiting = true
            drive(index)
        case .storeApply(let index, let incarnation, let operation):
            let reply = apply(operation, by: index, incarnation: incarnation)
            queue.push(.storeReply(index, incarnation: incarnation, reply), at: storeTime(after: draw(configuration.storeLatencyMillis)))
        case .storeReply(let index, let incarnation, let reply):
            guard masters[index].alive, masters[index].incarnation == incarnation else { return }
            if masters[index].paused {
                masters[index].bufferedReplies.append(reply)
            } else {
                deliver(reply, to: index)
            }
        case .fault:
            injectRandomFault()
            if counts.total < configuration.randomFaults || configuration.electionFaults {
                queue.push(.fault, at: now + Self.ms(draw(configuration.faultIntervalMillis)))
            }
        case .restartMaster(let index):
            restart(index)
        case .resume(let index):
            guard masters[index].alive, masters[index].paused else { return }
            masters[index].paused = false
            masters[index].runningSince = now
            log("\(masters[index].id) resumed")
            // The leader's runtime and its election are two tasks of the process: which one
            // runs first after the pause is a race, drawn from the seed. When the runtime wins,
            // it works through its backlog until the election's next tick.
            let runtimeFirst = masters[index].leader != nil && draw(0...1) == 0
            let replies = masters[index].bufferedReplies
            masters[index].bufferedReplies = []
            if runtimeFirst { masters[index].awaitingTick = true } else { masters[index].tickWaiting = true }
            for reply in replies { deliver(reply, to: index) }
            drive(index)
            offerLocks()
        case .recheckLocks:
            offerLocks()
            queue.push(.recheckLocks, at: now + Self.ms(50))
        case .submit(let graph):
            submissions.append((graph, nil))
            submitPending()
        case .retrySubmissions:
            submitPending()
        default:
            handleCluster(event)
        }
    }

    /// When the store answers an operation that takes `latency` ms from now.
    mutating func storeTime(after latency: Int) -> UInt64 { max(now + Self.ms(latency), storeStalledUntil) }

    // MARK: faults

    mutating func injectRandomFault() {
        if configuration.electionFaults {
            injectElectionFault()
            return
        }
        guard counts.total < configuration.randomFaults else { return }
        var kinds = configuration.faultKinds
        // The first faults go through every kind once, in a seeded order; then the leader's
        // faults (what a master failover is about) come as often as all the others together.
        let fresh = kinds.filter { counts.byKind[$0, default: 0] == 0 }
        if !fresh.isEmpty {
            kinds = fresh
        } else {
            let leaderFaults = kinds.filter { $0 == .leaderCrash || $0 == .leaderPause }
            if !leaderFaults.isEmpty, draw(0...1) == 0 { kinds = leaderFaults }
        }
        let kind = kinds[draw(0...(kinds.count - 1))]
        inject(kind)
    }

    mutating func inject(_ kind: FaultKind) {
        let leader = masters.indices.first { masters[$0].alive && !masters[$0].paused && masters[$0].election?.leaderEpoch != nil }
        let standbys = masters.indices.filter { masters[$0].alive && !masters[$0].paused && $0 != leader }
        let liveExecutors = executors.indices.filter { executors[$0].alive }
        var injected = true
        switch kind {
        case .leaderCrash:
            if let leader { kill(leader) } else { injected = false }
        case .leaderPause:
            if let leader {
                let lease = Int(configuration.election.leaseDuration.milliseconds)
                pause(leader, millis: lease + draw(200...2_000))
            } else {
                injected = false
            }
        case .standbyCrash:
            if standbys.isEmpty { injected = false } else { kill(standbys[draw(0...(standbys.count - 1))]) }
        case .taskExecutorCrash:
            if liveExecutors.isEmpty { injected = false } else { crashTaskExecutor(liveExecutors[draw(0...(liveExecutors.count - 1))]) }
        case .storeStall:
            let length = draw(configuration.storeStallMillis)
            storeStalledUntil = max(storeStalledUntil, now + Self.ms(length))
            log("store stalls for \(length) ms")
        case .networkDelay:
            guard let leader, !liveExecutors.isEmpty else {
                injected = false
                break
            }
            let executor = liveExecutors[draw(0...(liveExecutors.count - 1))]
            let length = draw(500...3_000)
            slowLinks[LinkKey(master: leader, executor: executor)] = now + Self.ms(length)
            log("link \(masters[leader].id)-\(executors[executor].resources.id) slow for \(length) ms")
        case .connectionLoss:
            let connected = liveExecutors.filter { executors[$0].connection != nil }
            if connected.isEmpty { injected = false } else { breakConnection(of: connected[draw(0...(connected.count - 1))]) }
        }
        if injected {
            counts.byKind[kind, default: 0] += 1
            counts.total += 1
            lastFaultAt = now
        }
    }

    mutating func injectElectionFault() {
        let alive = masters.indices.filter { masters[$0].alive && !masters[$0].paused }
        guard !alive.isEmpty else { return }
        let leaders = alive.filter { masters[$0].election?.leaderEpoch != nil }
        let target = (!leaders.isEmpty && draw(0...1) == 0) ? leaders[0] : alive[draw(0...(alive.count - 1))]
        if draw(1...100) <= configuration.killPercent {
            kill(target)
        } else {
            pause(target, millis: draw(configuration.pauseMillis))
        }
    }

    mutating func pause(_ index: Int, millis length: Int) {
        counts.pauses += 1
        masters[index].paused = true
        masters[index].pausedUntil = now + Self.ms(length)
        masters[index].runningSince = nil
        pausedConnections(of: index)
        log("\(masters[index].id) paused for \(length) ms")
        queue.push(.resume(index), at: now + Self.ms(length))
    }

    mutating func kill(_ index: Int) {
        counts.kills += 1
        let id = masters[index].id
        log("\(id) killed (incarnation \(masters[index].incarnation))")
        if masters[index].leader != nil { closeConnections(of: index) }
        masters[index].alive = false
        masters[index].paused = false
        masters[index].runningSince = nil
        masters[index].leader = nil
        if locks[id] == .process(index, incarnation: masters[index].incarnation) { locks[id] = nil }
        if let held = masters[index].holdingLockOf, locks[held] == .watcher(index) { locks[held] = nil }
        queue.push(.restartMaster(index), at: now + Self.ms(draw(configuration.restartDelayMillis)))
        offerLocks()
    }

    mutating func restart(_ index: Int) {
        let id = masters[index].id
        if locks[id] != nil {  // a watcher holds it for a moment: the new process waits for its lock
            queue.push(.restartMaster(index), at: now + Self.ms(10))
            return
        }
        nextIncarnation += 1
        let incarnation = nextIncarnation
        locks[id] = .process(index, incarnation: incarnation)
        var election = LeaderElection(identity: identity(of: index, incarnation: incarnation), configuration: configuration.election)
        let actions = election.start(now: instant)
        masters[index] = SimulatedMaster(
            id: id, incarnation: incarnation, alive: true, election: election, pending: actions, runningSince: now)
        log("\(id) started (incarnation \(incarnation))")
        queue.push(.tick(index, incarnation: incarnation), at: now + Self.nanos(configuration.tickInterval))
        drive(index)
    }

    func identity(of index: Int, incarnation: UInt64) -> LeaderIdentity {
        LeaderIdentity(member: masters[index].id, incarnation: Incarnation(rawValue: incarnation), address: "\(masters[index].id)", pid: Int32(index))
    }

    // MARK: the election's shell

    /// Carries out pending election actions until one needs the store, then waits for its reply;
    /// a leader then goes on with its JobManager's work.
    mutating func drive(_ index: Int) {
        while masters[index].alive, !masters[index].paused, !masters[index].busy {
            if !masters[index].pending.isEmpty {
                let action = masters[index].pending.removeFirst()
                perform(action, index)
                continue
            }
            if let member = masters[index].handlingDeathOf {
                // The report is handled: the watcher lets go of the member's lock.
                masters[index].handlingDeathOf = nil
                masters[index].holdingLockOf = nil
                if locks[member] == .watcher(index) { locks[member] = nil }
                offerLocks()
                continue
            }
            if !masters[index].deathReports.isEmpty {
                let member = masters[index].deathReports.removeFirst()
                masters[index].handlingDeathOf = member
                masters[index].pending = masters[index].election!.holderProcessDied(member, now: instant)
                continue
            }
            if masters[index].tickWaiting {
                masters[index].tickWaiting = false
                masters[index].awaitingTick = false
                masters[index].pending = masters[index].election!.tick(now: instant)
                if !masters[index].pending.isEmpty { continue }
            }
            if masters[index].leader != nil, driveLeader(index) { continue }
            break
        }
    }

    mutating func perform(_ action: LeaderElection.Action, _ index: Int) {
        func store(_ operation: StoreOperation) {
            masters[index].busy = true
            queue.push(
                .storeApply(index, incarnation: masters[index].incarnation, operation), at: storeTime(after: draw(configuration.storeLatencyMillis)))
        }
        switch action {
        case .readLeadership: store(.read)
        case .campaign(let expectation): store(.campaign(expectation))
        case .renew(let epoch): store(.renew(epoch))
        case .relinquish(let epoch, let reason): store(.relinquish(epoch, reason))
        case .watchHolder: offerLocks()
        case .leadershipGranted(let epoch):
            log("\(masters[index].id) leads epoch \(epoch)")
            if configuration.leadersRunJobManager { startLeading(index, epoch: epoch) }
        case .leadershipRevoked(let epoch, let reason):
            log("\(masters[index].id) stops leading epoch \(epoch): \(reason)")
            stopLeading(index)
        }
    }

    mutating func deliver(_ reply: StoreReply, to index: Int) {
        switch reply {
        case .takeover(let epoch, let takeover):
            tookOver(index, epoch: epoch, takeover)
            drive(index)
            return
        case .written(let epoch, let accepted):
            written(index, epoch: epoch, accepted: accepted)
            drive(index)
            return
        default:
            break
        }
        masters[index].busy = false
        var election = masters[index].election!
        let actions: [LeaderElection.Action]
        switch reply {
        case .read(let record): actions = election.observed(record, now: instant)
        case .campaign(.won(let victory)): actions = election.campaignCompleted(.won(victory.record), now: instant)
        case .campaign(.lost(let current)): actions = election.campaignCompleted(.lost(current: current), now: instant)
        case .renew(let epoch, .success): actions = election.renewCompleted(.renewed, epoch: epoch, now: instant)
        case .renew(let epoch, .failure(let fence)): actions = election.renewCompleted(.fenced(current: fence.current), epoch: epoch, now: instant)
        case .relinquished, .takeover, .written: actions = []
        }
        masters[index].election = election
        masters[index].pending = actions + masters[index].pending
        drive(index)
    }

    /// Free member locks go to the running candidates whose watchers wait for them.
    mutating func offerLocks() {
        for index in masters.indices {
            guard masters[index].alive, !masters[index].paused, masters[index].holdingLockOf == nil,
                let member = masters[index].election?.watchedMember, locks[member] == nil
            else { continue }
            // A watcher that just reported this member polls before reporting it again.
            if let last = masters[index].lastReport[member], now < last + Self.ms(200) { continue }
            locks[member] = .watcher(index)
            masters[index].holdingLockOf = member
            masters[index].lastReport[member] = now
            masters[index].deathReports.append(member)
            drive(index)
        }
    }

    // MARK: the store

    mutating func apply(_ operation: StoreOperation, by index: Int, incarnation: UInt64) -> StoreReply {
        let identity = identity(of: index, incarnation: incarnation)
        switch operation {
        case .read:
            return .read(store.leadership)
        case .campaign(let expectation):
            if case .holderDead(let member, _) = expectation, member != identity.member, locks[member] != .watcher(index) {
                // Checked before the store decides: the campaign is only allowed with the lock held.
                if store.leadership?.holder?.member == member {
                    violation("I1", "campaign-without-lock", "\(identity.member) campaigned on \(member)'s death without holding its lock")
                }
            }
            if case .holderDead = expectation, let holder = store.leadership?.holder, let owner = locks[holder.member],
                case .process(_, let living) = owner, living == holder.incarnation.rawValue
            {
                let outcome = store.campaign(
                    by: identity, expecting: expectation, leaseMillis: Int64(configuration.election.leaseDuration.milliseconds), now: wall)
                if case .won = outcome { violation("I1", "living-holder-declared-dead", "\(identity.member) declared \(holder.member) dead while that process lives") }
                return .campaign(outcome)
            }
            let before = store.terms.count
            let outcome = store.campaign(
                by: identity, expecting: expectation, leaseMillis: Int64(configuration.election.leaseDuration.milliseconds), now: wall)
            if case .won(let victory) = outcome {
                if store.terms.count == before { violation("I1", "epoch-opened-twice", "epoch \(victory.openedTerm.epoch) opened twice") }
                log("store: \(identity.member) wins epoch \(victory.record.epoch) (\(expectation))")
            }
            return .campaign(outcome)
        case .renew(let epoch):
            let result = store.renew(epoch: epoch, now: wall)
            if case .success(let renewed) = result, renewed.holder != identity {
                violation("I1", "renewal-by-another", "\(identity.member) renewed epoch \(epoch) held by \(renewed.holder!)")
            }
            return .renew(epoch, result.map { _ in () })
        case .relinquish(let epoch, let reason):
            let holder = store.leadership?.holder
            if store.relinquish(epoch: epoch, reason: reason, now: wall) {
                if holder != identity { violation("I1", "term-ended-by-another", "\(identity.member) ended epoch \(epoch) held by another") }
                log("store: \(identity.member) ends epoch \(epoch) (\(reason.rawValue))")
            }
            return .relinquished
        case .loadTakeover(let epoch):
            switch store.takeover(for: epoch) {
            case .success(let takeover): return .takeover(epoch, takeover)
            case .failure(let failure):
                violation("I3", "unreadable-jobs", "the store does not rebuild the jobs: \(failure)")
                return .takeover(epoch, JobManager.Takeover(jobs: []))
            }
        case .write(let epoch, let writes):
            return .written(epoch, accepted: writeToStore(writes, fencedBy: epoch))
        }
    }

    /// A leader's fenced write, with the store faults a checker test injects.
    mutating func writeToStore(_ writes: [JobManager.StoreWrite], fencedBy epoch: Epoch) -> Bool {
        if configuration.storeFaults.contains(.unfenced), store.leadership?.epoch != epoch {
            // A store that does not fence: the stale leader's write lands under the current epoch's nose.
            return store.writeUnfenced(writes, epoch: epoch)
        }
        let accepted = store.write(writes, fencedBy: epoch)
        if accepted, configuration.storeFaults.contains(.loseCompletedCheckpoints) {
            for case .checkpointCompleted(let checkpoint, _, _) in writes { store.forget(checkpoint) }
        }
        return accepted
    }

    // MARK: checks

    /// One acting leader at most, and it holds the store's current epoch (I1); a leader exists
    /// soon after a candidate could lead (liveness).
    mutating func checkLeadership() {
        let acting = masters.indices.filter {
            masters[$0].alive && !masters[$0].paused && !masters[$0].awaitingTick && masters[$0].election?.leaderEpoch != nil
        }
        if acting.count > 1 {
            violation("I1", "two-leaders", "two running leaders: \(acting.map { "\(masters[$0].id)@\(masters[$0].election!.leaderEpoch!)" })")
        }
        for index in acting {
            let epoch = masters[index].election!.leaderEpoch!
            let holder = store.leadership?.holder
            if store.leadership?.epoch != epoch || holder?.member != masters[index].id || holder?.incarnation.rawValue != masters[index].incarnation {
                violation("I1", "stale-leader", "\(masters[index].id) acts as leader of epoch \(epoch) but the store is at \(store.leadership?.epoch ?? .none)")
            }
        }
        if acting.isEmpty {
            if leaderlessSince == nil { leaderlessSince = now }
            let start = leaderlessSince!
            let bound =
                configuration.election.leaseDuration + configuration.election.pollInterval * 2
                + .milliseconds(4 * configuration.storeLatencyMillis.upperBound) + configuration.tickInterval * 2 + .milliseconds(250)
            let boundNanos = Self.nanos(bound) + max(0, storeStalledUntil > start ? storeStalledUntil - start : 0)
            let available = masters.contains { master in
                guard let since = master.runningSince else { return false }
                return now >= max(since, start) + boundNanos
            }
            if available {
                violation("liveness", "no-leader", "no leader for \(Double(now - start) / 1e6) ms although a candidate ran for longer than \(DurationText.format(bound))")
                leaderlessSince = now  // report each stretch once
            }
        } else if let start = leaderlessSince {
            longestLeaderlessMillis = max(longestLeaderlessMillis, Double(now - start) / 1e6)
            leaderlessSince = nil
        }
        let epochs = store.terms.keys.sorted()
        if let last = epochs.last, last.rawValue != UInt64(epochs.count) {
            violation("I1", "epoch-gap", "the journal's epochs are not 1...\(epochs.count): \(epochs)")
        }
    }
}
