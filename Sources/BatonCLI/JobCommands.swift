import ArgumentParser
import BatonClient
import BatonConfig
import BatonCore
import BatonJobGraph
import BatonWire
import Foundation
import Logging

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: "Submit a job spec to the leader; prints the job id.")

    @OptionGroup var config: ConfigOption
    @Argument(help: "The job spec (examples/jobs/*.yaml).")
    var job: String
    @Flag(name: .long, help: "Wait for the job to end: exit 0 when it FINISHED, 1 when it FAILED or was CANCELED.")
    var wait = false
    @Option(name: .customLong("from-savepoint"), help: "Start the job from this savepoint (the folder `baton savepoint` printed).")
    var fromSavepoint: String?

    func run() async throws {
        let configuration = try config.load()
        let graph: JobGraph
        do {
            graph = try JobSpec.load(path: job)
        } catch let error as ConfigError where error.code == .notExactlyOnce {
            // A job the leader would refuse (not exactly-once): refused, exit 1.
            throw CommandFailure.failed("the job was refused: \(error)")
        }
        let client = LeaderClient(configuration: configuration, logger: Logger(label: "baton.client"))
        var request = WireEnvelope()
        let savepoint = fromSavepoint.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? ""
        request.submitJob = .with {
            $0.jobGraphJson = (try? JSONEncoder().encode(graph)) ?? Data()
            $0.fromSavepoint = savepoint
            $0.specDirectory = JobSpec.folder(ofFile: job)
        }
        let reply = try await clientCall { try await client.request(request) }
        guard case .jobAccepted(let accepted) = reply.body else {
            throw CommandFailure.failed("the job was refused: \(reply.failure.message)")
        }
        print(accepted.job)
        guard wait else { return }
        try await waitForJob(accepted.job, client: client)
    }
}

/// Waits for `job` to end and prints its outcome; exits 1 unless it FINISHED.
func waitForJob(_ job: String, client: LeaderClient) async throws {
    var request = WireEnvelope()
    request.awaitJob = .with { $0.job = job }
    // The leader may change while the job runs: ask the new one.
    while true {
        let reply = try await clientCall { try await client.request(request, timeout: .seconds(86_400)) }
        switch reply.body {
        case .jobOutcome(let outcome):
            print("job \(outcome.job) \(outcome.state)" + (outcome.failure.isEmpty ? "" : ": \(outcome.failure)"))
            if outcome.state != "FINISHED" { throw CommandFailure(status: 1, message: "job \(outcome.job) ended \(outcome.state)") }
            return
        case .failure(let failure) where failure.message.contains("no longer the leader"):
            try await Task.sleep(for: .milliseconds(200))
        default:
            throw CommandFailure.failed(reply.failure.message)
        }
    }
}

/// Maps client errors to a failed command.
func clientCall<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as LeaderClient.ClientError {
        throw CommandFailure.failed(error.message)
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a job.")

    @OptionGroup var config: ConfigOption
    @Argument(help: "The job id.")
    var job: String

    func run() async throws {
        let client = LeaderClient(configuration: try config.load(), logger: Logger(label: "baton.client"))
        var request = WireEnvelope()
        request.cancelJob = .with { $0.job = job }
        let reply = try await clientCall { try await client.request(request) }
        guard case .ack = reply.body else { throw CommandFailure.failed(reply.failure.message) }
        print("canceling \(job)")
    }
}

struct SavepointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "savepoint", abstract: "Take a savepoint of a running job; prints its folder (for `submit --from-savepoint`).")

    @OptionGroup var config: ConfigOption
    @Argument(help: "The job id.")
    var job: String
    @Option(name: .long, help: "How long to wait for the savepoint, e.g. 60s.")
    var timeout: String = "120s"

    func run() async throws {
        guard let wait = DurationText.parse(timeout) else { throw ValidationError("--timeout: '\(timeout)' is not a duration like 60s") }
        let client = LeaderClient(configuration: try config.load(), logger: Logger(label: "baton.client"))
        var request = WireEnvelope()
        request.triggerSavepoint = .with { $0.job = job }
        let reply = try await clientCall { try await client.request(request, timeout: wait) }
        guard case .savepointCompleted(let completed) = reply.body else {
            throw CommandFailure.failed("no savepoint of \(job): \(reply.failure.message)")
        }
        print(completed.path)
    }
}

struct StopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "End a streaming job's input: its sources stop, and it finishes once drained.")

    @OptionGroup var config: ConfigOption
    @Argument(help: "The job id.")
    var job: String
    @Flag(name: .long, help: "Wait for the job to end: exit 0 when it FINISHED.")
    var wait = false

    func run() async throws {
        let client = LeaderClient(configuration: try config.load(), logger: Logger(label: "baton.client"))
        var request = WireEnvelope()
        request.stopJob = .with { $0.job = job }
        let reply = try await clientCall { try await client.request(request) }
        guard case .ack = reply.body else { throw CommandFailure.failed(reply.failure.message) }
        print("stopping \(job)")
        if wait { try await waitForJob(job, client: client) }
    }
}
