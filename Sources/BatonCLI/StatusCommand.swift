import ArgumentParser
import BatonStatus

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the leader, its epoch, and every master's role and pid.")

    @OptionGroup var config: ConfigOption
    @Flag(name: .long, help: "Print one JSON object (keys as in the README).")
    var json = false

    func run() async throws {
        let status = try await GroupStatus.readLive(try config.load())
        print(json ? status.json() : status.text())
    }
}
