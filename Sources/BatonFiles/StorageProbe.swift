#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Checks that a folder is storage this process can use: it writes a probe file there (synced),
/// reads it back, compares, and removes it. A task executor runs it on `checkpoints.dir` before it
/// starts, since every host's task executors and masters must share that folder (a shared mount
/// when the group spans machines): a task executor that cannot write and read back there would
/// only fail its first checkpoint.
public enum StorageProbe {
    /// Throws a `FileError` naming the folder and what failed: creating it, writing, reading
    /// back, or reading back other bytes than were written.
    public static func verify(_ directory: String, probeName: String) throws(FileError) {
        do {
            try DurableFiles.makeDirectories(directory)
        } catch {
            throw FileError(path: directory, "is not usable storage: \(error.message)")
        }
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let path = "\(directory)/.probe-\(probeName)-\(getpid())"
        defer { unlink(path) }
        do {
            try DurableFiles.write(token, to: path)
        } catch {
            throw FileError(path: directory, "cannot be written (a probe file failed): \(error.message)")
        }
        let read: [UInt8]
        do {
            read = try DurableFiles.read(path)
        } catch {
            throw FileError(path: directory, "a probe file written there cannot be read back: \(error.message)")
        }
        guard read == token else {
            throw FileError(path: directory, "a probe file read back other bytes than were written (\(read.count) of 32)")
        }
    }
}
