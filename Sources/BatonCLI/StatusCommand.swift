import ArgumentParser
import BatonStatus

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the leader, its epoch, and every master's role and pid.")

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
