import ArgumentParser
import BatonStatus

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the leader, its epoch, and every master's role and pid.")

    @OptionGroup var config: ConfigOption
    @Flag(name: .long, help: "Print one JSON object (keys as in DESIGN section 7).")
    var json = false

    func run() throws {
        let status = try GroupStatus.read(try config.load())
        print(json ? status.json() : status.text())
    }
}
