import ArgumentParser
import BatonStatus

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the group: the leader and its term, every member, and every job's tasks and checkpoints.",
        discussion: """
            Reads the store (it works with the group stopped) and, when a leader answers, asks it for its live view. Prints:
              - the cluster, the store's backend and path, and the leader: its id, epoch, RPC address, pid, the start of its term, and whether its process is alive;
              - MASTER: every master's role (leader, standby, down), pid and RPC address;
              - TASK EXECUTOR: every task executor's pid (or down), slots, free slots and the epoch of the leader it is registered with;
              - every job: its state, restarts and latest completed checkpoint (id, time, size, duration), and each subtask's attempt, state and task executor.
            With --all, also every ended run the store's history keeps. With --json, one JSON object with the same facts (keys as in the README). Exit status 0 when the store was read, 1 when it cannot be.
            """)

    @OptionGroup var config: ConfigOption
    @Flag(name: .long, help: "Print one JSON object (keys as in the README).")
    var json = false
    @Flag(name: .long, help: "Also list every ended run the store's history keeps.")
    var all = false

    func run() async throws {
        let configuration = try config.load()
        var status = try await GroupStatus.readLive(configuration)
        if all, status.store.exists { status.history = try GroupStatus.readHistory(configuration) }
        print(json ? status.json() : status.text())
    }
}
