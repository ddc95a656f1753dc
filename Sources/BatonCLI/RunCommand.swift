import ArgumentParser
import BatonBench
import BatonConfig
import BatonCore
import BatonJobGraph
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `baton run JOB.yaml`: the quickest way to try a job spec. One process, no store to set up, no
/// HA: the job runs on the in-process mini cluster, prints its progress every second, and the
/// command exits with its outcome (0 FINISHED, 1 FAILED or CANCELED). Ctrl-C ends a streaming
/// job's input (it finishes once drained); a second Ctrl-C exits at once.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run one job in this process (no store, no HA) and exit with its outcome.",
        discussion: """
            Runs the job on an in-process mini cluster: the real JobManager, task runtime and data plane over loopback, with a \
            private store in a temporary folder that is removed at the end. Paths in the spec resolve against its folder, as with \
            `submit`. Prints one progress line per second: the job's state, its running and finished tasks, restarts, the records \
            its sinks took, and its latest checkpoint. Exit status: 0 when the job FINISHED, 1 when it FAILED or was CANCELED, \
            2 for a bad spec. Ctrl-C (or --for) ends a streaming job's input; it then finishes once drained.
            """)

    @Argument(help: "The job spec (YAML, as examples/jobs).")
    var spec: String
    @Option(name: .long, help: "Task executors in the process.")
    var taskexecutors: Int = 1
    @Option(name: .customLong("for"), help: "End the job's input after this long, e.g. 10s (default: run until it ends or Ctrl-C).")
    var duration: String?

    func run() async throws {
        guard taskexecutors >= 1 else { throw CommandFailure.usage("--taskexecutors must be at least 1") }
        let limit = try duration.map { text in
            guard let parsed = DurationText.parse(text) else { throw CommandFailure.usage("--for: '\(text)' is not a duration like 10s") }
            return parsed
        }
        let graph = try JobSpec.load(path: spec)
        let interrupts = Interrupts()
        let started = ContinuousClock.now
        print("running \(graph.id) (\(graph.name)) on \(taskexecutors) task executor(s) in this process")
        let outcome = try await LocalJobRun(graph: graph, taskExecutors: taskexecutors).run(
            stop: { interrupts.any || limit.map { ContinuousClock.now - started >= $0 } ?? false }
        ) { progress, records in
            print(Self.line(progress, records: records, since: started))
        }
        if let progress = outcome.progress { print(Self.line(progress, records: outcome.recordsIntoSinks, since: started)) }
        print("job \(graph.id) \(outcome.state) after \(String(format: "%.1f", outcome.seconds)) s: \(outcome.recordsIntoSinks) records into its sinks")
        guard outcome.state == "FINISHED" else {
            throw CommandFailure.failed("job \(graph.id) \(outcome.state)" + (outcome.progress?.failure.map { ": \($0)" } ?? ""))
        }
    }

    static func line(_ progress: LocalJobRun.Progress, records: Int, since started: ContinuousClock.Instant) -> String {
        let elapsed = String(format: "%6.1fs", (ContinuousClock.now - started).milliseconds / 1000)
        let checkpoint = progress.checkpoint.map { id in "checkpoint \(id) (\(String(format: "%.1f", progress.checkpointMillis ?? 0)) ms)" } ?? "no checkpoint"
        return "[\(elapsed)] \(progress.state)  tasks \(progress.running) running, \(progress.finished) finished of \(progress.tasks)  "
            + "restarts \(progress.restarts)  \(records) records into sinks  \(checkpoint)"
    }

}

/// Counts Ctrl-Cs: the first ends the job's input, the second exits at once.
final class Interrupts: @unchecked Sendable {
    // @unchecked: `source` is set once and only kept alive here; `count` is atomic.
    private let count = Atomic<Int>(0)
    private let source: any DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [weak self] in
            if (self?.count.add(1, ordering: .relaxed).newValue ?? 2) >= 2 { Glibc.exit(130) }
            FileHandle.standardError.write(Data("baton: ending the job's input (Ctrl-C again to exit at once)\n".utf8))
        }
        source.resume()
    }

    var any: Bool { count.load(ordering: .relaxed) > 0 }
}
