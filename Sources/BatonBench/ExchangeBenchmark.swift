import BatonCore
import BatonDataPlane
import BatonJobGraph
import BatonOperators
import BatonRPC
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `baton bench exchange`: the data plane alone, as Flink's network throughput benchmark measures
/// its network stack. One producer's pipelined subpartition on one task executor, read by one
/// consumer on another over loopback TCP: the real handshake, credits, frames and input gate,
/// and every batch decoded into records at the consumer. Records are large (1 KiB by default),
/// so that what is measured is the exchange, not the decoding of small records.
///
/// Figures: bytes and batches per second, and the process's CPU time per GiB moved and context
/// switches per thousand batches (getrusage), the two costs of a remote channel that a 2-core
/// machine shows. The run fails unless the consumer received every record the producer wrote.
public struct ExchangeBenchmark: Sendable {
    public struct Run: Codable, Sendable, Hashable {
        public var batches: Int
        public var batchBytes: Int
        public var recordBytes: Int
        public var records: Int
        /// The credits the consumer's channel started with.
        public var credits: Int
        public var seconds: Double
        public var mebibytesPerSecond: Double
        public var batchesPerSecond: Double
        public var cpuSecondsPerGibibyte: Double
        public var contextSwitchesPerThousandBatches: Double
    }

    public var batches: Int
    public var recordBytes: Int
    /// Bytes of records per batch (a full batch of the task runtime is 64 KiB).
    public var batchBytes: Int
    /// Fault injection (the tests of this benchmark's check): the producer fails its subpartition
    /// after this many batches, so the consumer's channel breaks and the run must fail.
    public var failAfter: Int?

    public init(batches: Int, recordBytes: Int = 1024, batchBytes: Int = 64 << 10) {
        self.batches = batches
        self.recordBytes = recordBytes
        self.batchBytes = batchBytes
    }

    public func run() async throws -> Run {
        let logger = Logger(label: "baton.bench.exchange")
        let executors = try await MiniCluster.localTaskExecutors(2, slots: 1, logger: logger)
        let (producer, consumer) = (executors[0], executors[1])
        let recordsPerBatch = max(1, batchBytes / max(1, recordBytes))
        let batch = ChannelEventCodec.encode(records: (0..<recordsPerBatch).map { .line(String(repeating: "x", count: max(0, recordBytes - 4)) + String(format: "%04d", $0 % 10_000)) })
        let id = PartitionID(job: JobID(rawValue: "exchange")!, result: 0, producerSubtask: 0, producerAttempt: 0)
        let subpartition = PipelinedSubpartition(capacity: 8)
        await producer.plane.registry.register(id, .pipelined([subpartition]))
        let gate = InputGate(
            channels: [InputChannelSpec(partition: id, subpartition: 0, location: .init(taskExecutor: producer.id, host: "127.0.0.1", port: producer.port))])
        let (batches, failAfter) = (self.batches, self.failAfter)

        let before = Usage.now()
        let started = ContinuousClock.now
        let received = try await withThrowingTaskGroup(of: Int?.self) { group in
            for executor in executors { group.addTask { try await executor.plane.serve(executor.server); return nil } }
            group.addTask {
                for index in 0..<batches {
                    if index == failAfter {
                        await subpartition.fail(BenchmarkFailure(message: "the producer failed after \(index) batches (injected)"))
                        return nil
                    }
                    await subpartition.write(batch)
                }
                await subpartition.finish()
                return nil
            }
            group.addTask {
                await gate.run(opener: consumer.plane)
                return nil
            }
            var records = 0
            var failure: (any Error)?
            do {
                while let event = try await gate.mailbox.take() {
                    if case .records(let list) = event { records += list.count }
                }
            } catch {
                failure = error
            }
            for executor in executors { executor.server.close() }
            group.cancelAll()
            if let failure { throw BenchmarkFailure(message: "the consumer's channel failed after \(records) records: \(failure)") }
            return records
        }
        let seconds = (ContinuousClock.now - started).milliseconds / 1000
        let used = Usage.now() - before
        let expected = batches * recordsPerBatch
        guard received == expected else {
            throw BenchmarkFailure(message: "the consumer received \(received) records of the \(expected) sent")
        }
        let bytes = Double(batches) * Double(batch.count)
        return Run(
            batches: batches, batchBytes: batch.count, recordBytes: recordBytes, records: received,
            credits: consumer.plane.initialCredit(channels: gate.channelCount), seconds: seconds,
            mebibytesPerSecond: bytes / Double(1 << 20) / seconds, batchesPerSecond: Double(batches) / seconds,
            cpuSecondsPerGibibyte: used.cpuSeconds / (bytes / Double(1 << 30)),
            contextSwitchesPerThousandBatches: Double(used.contextSwitches) / (Double(batches) / 1000))
    }

    /// The process's CPU time and context switches so far (getrusage).
    struct Usage {
        var cpuSeconds: Double
        var contextSwitches: Int

        static func now() -> Usage {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
            return Usage(cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime), contextSwitches: usage.ru_nvcsw + usage.ru_nivcsw)
        }

        static func - (lhs: Usage, rhs: Usage) -> Usage {
            Usage(cpuSeconds: lhs.cpuSeconds - rhs.cpuSeconds, contextSwitches: lhs.contextSwitches - rhs.contextSwitches)
        }
    }
}
