import BatonConfig
public import BatonCore
public import BatonJobGraph

/// A small, valid job (the batch word count of `examples/jobs/`) for what a decoder needs beside
/// the bytes under test: the job graph a savepoint is checked against, the graph change records
/// rebuild when the store image holds no job record, the task an UpdatePartitionInfo is applied
/// to; and for the seeds, which describe this job.
public enum SampleJob {
    public static let specText = """
        name: Batch word count
        scheduling: lazy-from-sources
        failover: region
        restart: { strategy: fixed-delay, attempts: 3, delay: 1s }
        vertices:
          - id: tokenize
            parallelism: 2
            operators:
              - text-file: { path: ../data/words.txt }
              - tokenize
          - id: sum
            parallelism: 2
            operators:
              - sum: { field: value }
              - file-sink: { path: ../output/word-count, exactly-once: false }
        edges:
          - { from: tokenize, to: sum, pattern: hash, key: word, result: blocking }

        """

    /// The folder the sample spec lies in (it does not exist: nothing reads it).
    public static let directory = "/baton-fuzz/jobs"

    /// The sample's graph (its id, `word-count`, comes from the file name).
    public static let graph: JobGraph = {
        do {
            return try JobSpec.parse(text: specText, file: "\(directory)/word-count.yaml")
        } catch {
            preconditionFailure("the sample job spec does not parse: \(error)")
        }
    }()

    /// The resources of one task executor, for checks that need an offer (a submitted job's
    /// slots must fit one).
    public static let taskExecutorResources = ResourceProfile(
        cpuMillis: 4000, taskHeapBytes: 4 << 30, managedMemoryBytes: 1 << 30, networkMemoryBytes: 256 << 20)
}
