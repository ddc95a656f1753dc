import BatonCore
import BatonElection
import Foundation
import BatonTestKit
import Testing

/// Data-driven tests of the election instance, in the style of etcd-io/raft's interaction tests:
/// each file in `Scenarios/` is a list of inputs (`> command`) with the actions expected after
/// each (`ScenarioFile`). Run with `BATON_REWRITE_SCENARIOS=1` to write the actual output into the
/// files (then review the diff).
@Suite("election scenarios")
struct ElectionScenarioTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scenarios")
    static var files: [String] { ScenarioFile.files(in: directory) }

    @Test("scenario", arguments: files)
    func scenario(_ file: String) throws {
        let (expected, actual) = try ScenarioFile.outcome(of: file, in: Self.directory, run: ScenarioRunner.run)
        #expect(actual == expected, "scenario \(file) differs:\n\(ScenarioFile.diff(expected, actual))")
    }

    @Test("there are scenarios to run")
    func scenariosExist() { #expect(Self.files.count >= 6) }
}

/// Runs one election scenario and returns the text with the actual outputs.
enum ScenarioRunner {
    typealias Failure = ScenarioFile.Failure

    static func run(_ text: String) throws -> String {
        var election: LeaderElection?
        var me: MemberID = "m1"
        var configuration = LeaderElection.Configuration(
            leaseDuration: .seconds(2), renewInterval: .milliseconds(500), pollInterval: .milliseconds(500))
        return try ScenarioFile.run(
            text, settings: ["config"],
            setting: { _, fields in
                if let lease = fields["lease"] { configuration.leaseDuration = try duration(lease) }
                if let renew = fields["renew"] { configuration.renewInterval = try duration(renew) }
                if let poll = fields["poll"] { configuration.pollInterval = try duration(poll) }
                if let name = fields["me"] { me = MemberID(rawValue: name)! }
            },
            command: { command, fields in
                let now = MonotonicInstant(nanoseconds: UInt64(try ScenarioFile.int(fields["at"] ?? "0")) * 1_000_000)
                if election == nil {
                    election = LeaderElection(
                        identity: LeaderIdentity(member: me, incarnation: Incarnation(rawValue: 1), address: "addr-\(me)", pid: 1),
                        configuration: configuration)
                }
                var actions: [LeaderElection.Action]
                switch command {
                case "start": actions = election!.start(now: now)
                case "tick": actions = election!.tick(now: now)
                case "observed": actions = election!.observed(try record(fields), now: now)
                case "read-failed": actions = election!.readFailed(now: now)
                case "died":
                    actions = election!.holderProcessDied(
                        MemberID(rawValue: fields["member"]!)!, incarnation: fields["incarnation"].map { Incarnation(rawValue: UInt64($0)!) }, now: now)
                case "changed": actions = election!.leadershipChanged(now: now)
                case "won":
                    var record = try record(fields)!
                    record.holder = election!.identity
                    actions = election!.campaignCompleted(.won(record), now: now)
                case "lost": actions = election!.campaignCompleted(.lost(current: try record(fields)), now: now)
                case "campaign-failed": actions = election!.campaignCompleted(.failed, now: now)
                case "renewed": actions = election!.renewCompleted(.renewed, epoch: Epoch(UInt64(try ScenarioFile.int(fields["epoch"]))), now: now)
                case "renew-failed":
                    actions = election!.renewCompleted(.failed, epoch: Epoch(UInt64(try ScenarioFile.int(fields["epoch"]))), now: now)
                case "renew-fenced":
                    actions = election!.renewCompleted(
                        .fenced(current: Epoch(UInt64(try ScenarioFile.int(fields["current"])))),
                        epoch: Epoch(UInt64(try ScenarioFile.int(fields["epoch"]))), now: now)
                case "resign": actions = election!.resign(now: now)
                default: throw Failure("unknown command \(command)")
                }
                return actions.map(render) + ["  role \(render(election!.role))"]
            })
    }

    static func render(_ action: LeaderElection.Action) -> String {
        switch action {
        case .readLeadership: "read"
        case .watchHolder(let member): "watch \(member.map(\.rawValue) ?? "none")"
        case .campaign(let expectation): "campaign: \(expectation)"
        case .renew(let epoch): "renew \(epoch)"
        case .relinquish(let epoch, let reason): "relinquish \(epoch) \(reason.rawValue)"
        case .leadershipGranted(let epoch): "granted \(epoch)"
        case .leadershipRevoked(let epoch, let reason): "revoked \(epoch): \(reason)"
        }
    }

    static func render(_ role: LeaderElection.Role) -> String {
        switch role {
        case .idle: "idle"
        case .standby: "standby"
        case .campaigning: "campaigning"
        case .leader(let epoch): "leader \(epoch)"
        case .stopped: "stopped"
        }
    }

    /// `none`, `epoch=E vacant`, or `epoch=E holder=M[#incarnation] renewals=R`.
    static func record(_ fields: [String: String]) throws -> LeadershipRecord? {
        if fields["none"] != nil { return nil }
        let epoch = Epoch(UInt64(try ScenarioFile.int(fields["epoch"] ?? "0")))
        var holder: LeaderIdentity?
        if let spec = fields["holder"] {
            let parts = spec.split(separator: "#")
            let member = MemberID(rawValue: String(parts[0]))!
            let incarnation = parts.count > 1 ? UInt64(parts[1])! : (member == "m1" ? 1 : 100)
            holder = LeaderIdentity(member: member, incarnation: Incarnation(rawValue: incarnation), address: "addr-\(member)", pid: 1)
        }
        let now = WallTime(millisecondsSince1970: 0)
        return LeadershipRecord(
            epoch: epoch, holder: holder, renewals: UInt64(try ScenarioFile.int(fields["renewals"] ?? "0")), termStartedAt: now, renewedAt: now,
            leaseMillis: 2000)
    }



    static func duration(_ text: String) throws -> Duration {
        guard let value = DurationText.parse(text) else { throw Failure( "'\(text)' is not a duration") }
        return value
    }

}
