import BatonProcessControl
import Foundation
import Testing

/// Runs leave nothing behind: a run's folder goes even while something else removes files in it.
@Suite struct TemporaryDirectoryTests {
    @Test("remove() takes the folder away even while another thread removes files in it")
    func removeRacesAnotherRemover() throws {
        for round in 0..<15 {
            let directory = try TemporaryDirectory("baton-remove-race")
            let files = (0..<300).map { directory.file("part-\($0).inprogress") }
            for file in files { FileManager.default.createFile(atPath: file, contents: Data([1])) }
            let other = Thread { for file in files.reversed() { unlink(file) } }
            other.start()
            directory.remove()
            while !other.isFinished { usleep(1_000) }
            #expect(!FileManager.default.fileExists(atPath: directory.path), "round \(round): the folder was left behind")
            try? FileManager.default.removeItem(atPath: directory.path)
        }
    }
}
