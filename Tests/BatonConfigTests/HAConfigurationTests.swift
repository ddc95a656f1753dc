import BatonConfig
import BatonCore
import Foundation
import Testing

@Suite("ha-config loading")
struct HAConfigurationTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func parse(_ text: String) throws -> HAConfiguration {
        try HAConfiguration.parse(text: text, file: "/etc/baton/test.yaml")
    }

    func failure(_ text: String, file: String = "/etc/baton/test.yaml") -> ConfigError? {
        do {
            _ = try HAConfiguration.parse(text: text, file: file)
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    let minimal = """
        rpc: { secret: a-secret-of-some-length }
        store: { backend: sqlite, path: data/ha.sqlite }
        masters:
          - { id: m1, rpc: "127.0.0.1:6123", rest: "127.0.0.1:8081" }
        """

    @Test("the shipped configs hold no secret, name a secret file, and load with three masters each once it exists")
    func shippedConfigs() throws {
        // Loaded from a copy beside a secret file of its own: the repository's folder is not written.
        let directory = NSTemporaryDirectory() + "baton-shipped-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for name in ["local.yaml", "local-lmdb.yaml"] {
            let text = try String(contentsOfFile: Self.repository + "/ha-config/" + name, encoding: .utf8)
            #expect(!text.contains("secret:") && text.contains("secretFile: data/cluster.secret"), "\(name)")
            #expect(text.contains("tokenFile: data/rest.token"), "\(name)")
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
            let made = try SecretFile.ensureAll(forConfig: directory + "/" + name)
            #expect(made.map(\.path) == [directory + "/data/cluster.secret", directory + "/data/rest.token"])
        }
        let sqlite = try HAConfiguration.load(path: directory + "/local.yaml")
        #expect(sqlite.store.backend == .sqlite)
        #expect(sqlite.rest.token?.count == 64 && sqlite.rest.token != sqlite.rpc.secret)
        #expect(!"\(sqlite.rest)".contains(String(decoding: sqlite.rest.token ?? [], as: UTF8.self)))
        #expect(sqlite.masters.map(\.id) == ["m1", "m2", "m3"])
        #expect(sqlite.store.path == directory + "/data/ha.sqlite")
        #expect(sqlite.election.leaseDuration == .seconds(2))
        #expect(sqlite.election.renewInterval == .milliseconds(500))
        #expect(sqlite.taskExecutors.count == 2)
        let lmdb = try HAConfiguration.load(path: directory + "/local-lmdb.yaml")
        #expect(lmdb.store.backend == .lmdb)
        #expect(lmdb.masters.count == 3)
        #expect(lmdb.store.mapSizeBytes == 1 << 30)
    }

    @Test("rpc.tls is required once any address is not loopback, and names the address and how to make certificates")
    func tlsRequiredOffLoopback() throws {
        let offLoopback = """
            rpc: { secret: a-secret-of-some-length }
            store: { backend: sqlite, path: data/ha.sqlite }
            masters:
              - { id: m1, rpc: "127.0.0.1:6123", rest: "127.0.0.1:8081" }
            taskexecutors:
              - { id: te1, slots: 1, data: "10.0.0.7:6200" }
            """
        let error = try #require(failure(offLoopback))
        #expect(error.message.contains("taskexecutors[te1].data (10.0.0.7:6200)") && error.message.contains("baton certs"), "\(error)")
        let withTLS = try parse(offLoopback.replacingOccurrences(of: "a-secret-of-some-length }", with: "a-secret-of-some-length, tls: { dir: tls } }"))
        #expect(withTLS.rpc.tlsDirectory == "/etc/baton/tls")
        // Loopback in every form needs none.
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "[::1]"] {
            #expect(try parse(minimal.replacingOccurrences(of: "\"127.0.0.1:6123\"", with: "\"\(host):6123\"")).rpc.tlsDirectory == nil)
        }
        #expect(failure(minimal.replacingOccurrences(of: "127.0.0.1:8081", with: "0.0.0.0:8081"))?.message.contains("masters[m1].rest") == true)
        // With TLS no member may take the clients' certificate name.
        let clientMember = minimal.replacingOccurrences(of: "length }", with: "length, tls: { dir: tls } }")
            .replacingOccurrences(of: "id: m1", with: "id: client")
        #expect(failure(clientMember)?.message.contains("'client'") == true)
    }

    @Test("relative paths resolve against the config's folder; defaults fill the rest")
    func relativePaths() throws {
        let configuration = try parse(minimal)
        #expect(configuration.store.path == "/etc/baton/data/ha.sqlite")
        #expect(configuration.checkpoints.directory == "/etc/baton/data/checkpoints")
        #expect(configuration.election.leaseDuration == .seconds(2))
        #expect(configuration.election.pollInterval == .milliseconds(500))
        #expect(configuration.cluster == "local")
        #expect(configuration.group.restartDelay == .seconds(1))
        let absolute = try parse(minimal.replacingOccurrences(of: "data/ha.sqlite", with: "/var/lib/baton/../baton2/ha.sqlite"))
        #expect(absolute.store.path == "/var/lib/baton2/ha.sqlite")
    }

    @Test("an unknown key is an error naming the file, the key path and the line")
    func unknownKey() throws {
        let error = try #require(failure(minimal + "\nelection: { lease: 2s, renw: 500ms }\n"))
        #expect(error.code == .unknownKey)
        #expect(error.file == "/etc/baton/test.yaml")
        #expect(error.keyPath == "election.renw")
        #expect(error.line == 5)
        #expect(error.description.contains("test.yaml:5: election.renw"))
        let nested = try #require(failure(minimal.replacingOccurrences(of: "rest:", with: "rset:")))
        #expect(nested.keyPath == "masters[0].rset")
        let top = try #require(failure(minimal + "\nmaster: []\n"))
        #expect(top.keyPath == "master")
    }

    @Test("a missing required key is named")
    func missingKey() throws {
        let error = try #require(failure("masters:\n  - { id: m1, rpc: \"127.0.0.1:1\", rest: \"127.0.0.1:2\" }\n"))
        #expect(error.code == .missingKey)
        #expect(error.keyPath == "store")
        let noPath = try #require(failure("store: { backend: lmdb }\nmasters: []\n"))
        #expect(noPath.keyPath == "store.path")
    }

    @Test("bad values are named with what is wrong")
    func badValues() throws {
        let backend = try #require(failure(minimal.replacingOccurrences(of: "backend: sqlite", with: "backend: sqlit")))
        #expect(backend.keyPath == "store.backend")
        #expect(backend.message.contains("sqlite, lmdb"))
        let lease = try #require(failure(minimal + "\nelection: { lease: two seconds }\n"))
        #expect(lease.keyPath == "election.lease")
        #expect(lease.message.contains("not a duration"))
        let address = try #require(failure(minimal.replacingOccurrences(of: "127.0.0.1:6123", with: "127.0.0.1:99999")))
        #expect(address.keyPath == "masters[0].rpc")
        let id = try #require(failure(minimal.replacingOccurrences(of: "id: m1", with: "id: m/1")))
        #expect(id.keyPath == "masters[0].id")
        let etcd = try #require(failure(minimal.replacingOccurrences(of: "backend: sqlite", with: "backend: etcd")))
        #expect(etcd.keyPath == "store.path" && etcd.message.contains("does not apply to the etcd backend"))
        let mapSize = try #require(failure(minimal.replacingOccurrences(of: "path: data/ha.sqlite", with: "path: x, mapSize: 1GiB")))
        #expect(mapSize.keyPath == "store.mapSize")
        #expect(mapSize.message.contains("lmdb"))
    }

    @Test("store on etcd: endpoints and a prefix (default /baton/<cluster>/), the transaction limits, and each bad value named")
    func etcdStore() throws {
        func etcd(_ store: String) -> String {
            minimal.replacingOccurrences(of: "store: { backend: sqlite, path: data/ha.sqlite }", with: "store: \(store)")
        }
        let defaults = try parse(etcd("{ backend: etcd, endpoints: [\"http://10.0.0.1:2379\", \"http://10.0.0.2:2379/\"] }"))
        #expect(defaults.store.backend == .etcd)
        #expect(defaults.store.endpoints == ["http://10.0.0.1:2379", "http://10.0.0.2:2379"])
        #expect(defaults.store.prefix == "/baton/local/")
        #expect(defaults.store.path == "etcd://http://10.0.0.1:2379,http://10.0.0.2:2379/baton/local/")
        #expect(defaults.store.maxTxnOps == 128 && defaults.store.maxRequestBytes == 1_572_864)
        let set = try parse(etcd("{ backend: etcd, endpoints: [\"http://e1:2379\"], prefix: /prod/flows, maxTxnOps: 4096, maxRequestBytes: 8MiB }"))
        #expect(set.store.prefix == "/prod/flows/" && set.store.maxTxnOps == 4096 && set.store.maxRequestBytes == 8 << 20)
        let isolated = NSTemporaryDirectory() + "baton-isolated-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: isolated) }
        let copy = try HAConfiguration.parse(text: set.isolatedCopy(directory: isolated), file: isolated + "/copy.yaml")
        #expect(copy.store.backend == .etcd && copy.store.endpoints == ["http://e1:2379"] && copy.store.maxTxnOps == 4096)
        #expect(copy.store.prefix != set.store.prefix && copy.store.prefix.hasPrefix("/local-run-"), "\(copy.store.prefix)")

        let missing = try #require(failure(etcd("{ backend: etcd }")))
        #expect(missing.keyPath == "store.endpoints")
        let empty = try #require(failure(etcd("{ backend: etcd, endpoints: [] }")))
        #expect(empty.message.contains("at least one"))
        let https = try #require(failure(etcd("{ backend: etcd, endpoints: [\"https://e1:2379\"] }")))
        #expect(https.keyPath == "store.endpoints[0]" && https.message.contains("https://e1:2379"), "\(https)")
        let noPort = try #require(failure(etcd("{ backend: etcd, endpoints: [\"http://e1\"] }")))
        #expect(noPort.message.contains("http://HOST:PORT"))
        let prefix = try #require(failure(etcd("{ backend: etcd, endpoints: [\"http://e1:2379\"], prefix: relative/x }")))
        #expect(prefix.keyPath == "store.prefix")
        let onSqlite = try #require(failure(minimal.replacingOccurrences(of: "path: data/ha.sqlite", with: "path: x, endpoints: [\"http://e1:2379\"]")))
        #expect(onSqlite.keyPath == "store.endpoints" && onSqlite.message.contains("etcd backend only"))
        let ops = try #require(failure(etcd("{ backend: etcd, endpoints: [\"http://e1:2379\"], maxTxnOps: 1 }")))
        #expect(ops.keyPath == "store.maxTxnOps")
    }

    @Test("the job history's retention: defaults, both keys, and bad values named")
    func jobHistoryRetention() throws {
        let defaults = try parse(minimal)
        #expect(defaults.jobHistoryRetain == 1000 && defaults.jobHistoryMaxAge == .seconds(7 * 86_400))
        let set = try parse(minimal + "\njobs: { history: { retain: 5, maxAge: 1h } }\n")
        #expect(set.jobHistoryRetain == 5 && set.jobHistoryMaxAge == .seconds(3600))
        let zero = try #require(failure(minimal + "\njobs: { history: { retain: 0 } }\n"))
        #expect(zero.keyPath == "jobs.history.retain")
        let unknown = try #require(failure(minimal + "\njobs: { history: { keep: 5 } }\n"))
        #expect(unknown.message.contains("keep"))
    }

    @Test("an isolated copy (chaos, benchmarks) keeps the config's job history retention and snapshot interval")
    func isolatedCopyKeepsJobSettings() throws {
        let configuration = try parse(minimal + "\njobs: { history: { retain: 7, maxAge: 2h }, snapshotEvery: 33 }\n")
        let isolated = NSTemporaryDirectory() + "baton-isolated-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: isolated) }
        let copy = try HAConfiguration.parse(text: configuration.isolatedCopy(directory: isolated), file: isolated + "/copy.yaml")
        #expect(copy.rpc.secretFile == isolated + "/cluster.secret" && copy.rpc.secret != configuration.rpc.secret)
        #expect(copy.jobHistoryRetain == 7 && copy.jobHistoryMaxAge == .seconds(7200) && copy.jobSnapshotEvery == 33)
    }

    @Test("blockingResults: a 256 MiB budget spilling to data/spill by default; both keys set; a bad size named")
    func blockingResults() throws {
        let defaults = try parse(minimal)
        #expect(defaults.blockingResultMemoryBytes == 256 << 20 && defaults.blockingResultDirectory == "/etc/baton/data/spill")
        let set = try parse(minimal + "\nblockingResults: { memory: 1MiB, dir: /var/spill }\n")
        #expect(set.blockingResultMemoryBytes == 1 << 20 && set.blockingResultDirectory == "/var/spill")
        let bad = try #require(failure(minimal + "\nblockingResults: { memory: lots }\n"))
        #expect(bad.keyPath == "blockingResults.memory")
    }

    @Test("jobs.snapshotEvery: default 1000, set, and a bad value named")
    func snapshotEvery() throws {
        #expect(try parse(minimal).jobSnapshotEvery == 1000)
        #expect(try parse(minimal + "\njobs: { snapshotEvery: 50 }\n").jobSnapshotEvery == 50)
        let zero = try #require(failure(minimal + "\njobs: { snapshotEvery: 0 }\n"))
        #expect(zero.keyPath == "jobs.snapshotEvery")
    }

    @Test("renew must leave room for retries within the lease")
    func renewVersusLease() throws {
        let error = try #require(failure(minimal + "\nelection: { lease: 1s, renew: 800ms }\n"))
        #expect(error.keyPath == "election.renew")
        #expect(error.message.contains("at most half"))
    }

    @Test("ids and addresses must be unique")
    func uniqueness() throws {
        let twoMasters = minimal + "\n  - { id: m1, rpc: \"127.0.0.1:6124\", rest: \"127.0.0.1:8082\" }\n"
        let duplicateID = try #require(failure(twoMasters))
        #expect(duplicateID.keyPath == "masters[1].id")
        let duplicateAddress = try #require(
            failure(minimal + "\n  - { id: m2, rpc: \"127.0.0.1:8081\", rest: \"127.0.0.1:8082\" }\n"))
        #expect(duplicateAddress.keyPath == "masters[1].rpc")
        #expect(duplicateAddress.message.contains("masters[0].rest"))
    }

    @Test("invalid YAML is a syntax error with its line")
    func syntax() throws {
        let error = try #require(failure("store: { backend: sqlite\nmasters: [\n"))
        #expect(error.code == .syntax)
        #expect(error.line != nil)
    }

    @Test("an unreadable file is named")
    func unreadable() throws {
        #expect(throws: ConfigError.self) { try HAConfiguration.load(path: "/nonexistent/ha.yaml") }
    }

    @Test("the RPC secret is required, given once, and long enough; heartbeat settings are checked")
    func rpcSettings() throws {
        let configuration = try parse(minimal)
        #expect(configuration.rpc.secret == Array("a-secret-of-some-length".utf8))
        #expect(configuration.rpc.heartbeatInterval == .seconds(1) && configuration.rpc.heartbeatTimeout == .seconds(5))
        let missing = try #require(failure(minimal.replacingOccurrences(of: "rpc: { secret: a-secret-of-some-length }\n", with: "")))
        #expect(missing.keyPath == "rpc" && missing.code == .missingKey)
        let both = try #require(failure(minimal.replacingOccurrences(of: "secret: a-secret-of-some-length", with: "secret: a-secret-of-some-length, secretFile: s")))
        #expect(both.message.contains("not both"))
        let short = try #require(failure(minimal.replacingOccurrences(of: "a-secret-of-some-length", with: "short")))
        #expect(short.message.contains("at least 8 bytes"))
        let beats = try #require(failure(minimal.replacingOccurrences(of: "secret: a-secret-of-some-length", with: "secret: a-secret-of-some-length, heartbeat: 1s, heartbeatTimeout: 1500ms")))
        #expect(beats.keyPath == "rpc.heartbeatTimeout")
        let directory = NSTemporaryDirectory() + "baton-secret-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "from-a-file-secret\n".write(toFile: directory + "/secret", atomically: true, encoding: .utf8)
        let fileConfig = minimal.replacingOccurrences(of: "secret: a-secret-of-some-length", with: "secretFile: secret")
        // Written with the umask's mode (0644 here): readable by others, so refused, saying how to fix it.
        chmod(directory + "/secret", 0o644)
        let open = try #require(failure(fileConfig, file: directory + "/ha.yaml"))
        #expect(open.keyPath == "rpc.secretFile" && open.message.contains("chmod 600 \(directory)/secret"), "\(open)")
        #expect(!open.description.contains("from-a-file-secret"))
        chmod(directory + "/secret", 0o600)
        let fromFile = try HAConfiguration.parse(text: fileConfig, file: directory + "/ha.yaml")
        #expect(fromFile.rpc.secret == Array("from-a-file-secret".utf8))
        #expect(fromFile.rpc.secretFile == directory + "/secret")
        #expect(try parse(minimal).rpc.secretFile == nil)
        let missingFile = try #require(failure(fileConfig.replacingOccurrences(of: "secretFile: secret", with: "secretFile: nowhere"), file: directory + "/ha.yaml"))
        #expect(missingFile.message.contains("does not exist") && missingFile.message.contains("baton init --config"), "\(missingFile)")
    }

    @Test("files.mode: 0600 by default (folders 0700); 0640 gives folders 0750; execute bits, an owner who cannot write, or no octal number are refused")
    func fileMode() throws {
        let defaults = try parse(minimal)
        #expect(defaults.fileMode == .private && defaults.fileMode.folderBits == 0o700 && defaults.fileMode.umask == 0o077)
        let shared = try parse(minimal + "\nfiles: { mode: \"0640\" }\n")
        #expect(shared.fileMode.bits == 0o640 && shared.fileMode.folderBits == 0o750 && shared.fileMode.umask == 0o027)
        #expect(try parse(minimal + "\nfiles: { mode: \"664\" }\n").fileMode.folderBits == 0o775)
        for bad in ["0755", "0400", "0460", "rw-------", "01600"] {
            let refused = try #require(failure(minimal + "\nfiles: { mode: \"\(bad)\" }\n"), "\(bad)")
            #expect(refused.keyPath == "files.mode" && refused.message.contains(bad), "\(refused)")
        }
        let isolated = NSTemporaryDirectory() + "baton-isolated-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: isolated) }
        #expect(try HAConfiguration.parse(text: shared.isolatedCopy(directory: isolated), file: isolated + "/copy.yaml").fileMode.bits == 0o640)
    }

    @Test("a secret file is made once: 32 random bytes as hex, mode 0600 in a 0700 folder; an existing one is left as it is")
    func secretFileCreation() throws {
        let directory = NSTemporaryDirectory() + "baton-secret-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/ha.yaml"
        try minimal.replacingOccurrences(of: "secret: a-secret-of-some-length", with: "secretFile: data/cluster.secret")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let made = try #require(try SecretFile.ensure(forConfig: config))
        #expect(made.created && made.path == directory + "/data/cluster.secret")
        let attributes = try FileManager.default.attributesOfItem(atPath: made.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect((try FileManager.default.attributesOfItem(atPath: directory + "/data")[.posixPermissions] as? Int) == 0o700)
        let first = try String(contentsOfFile: made.path, encoding: .utf8)
        #expect(first.count == 65 && first.hasSuffix("\n") && first.dropLast().allSatisfy(\.isHexDigit))
        let again = try #require(try SecretFile.ensure(forConfig: config))
        let unchanged = try String(contentsOfFile: made.path, encoding: .utf8)
        #expect(!again.created && unchanged == first)
        #expect(try HAConfiguration.load(path: config).rpc.secret.count == 64)
        // Another config's secret differs: no two installations share one.
        let other = directory + "/other.yaml"
        try minimal.replacingOccurrences(of: "secret: a-secret-of-some-length", with: "secretFile: other.secret")
            .write(toFile: other, atomically: true, encoding: .utf8)
        _ = try SecretFile.ensure(forConfig: other)
        let otherSecret = try String(contentsOfFile: directory + "/other.secret", encoding: .utf8)
        #expect(otherSecret != first)
        // An inline secret names no file: nothing to make.
        try minimal.write(toFile: directory + "/inline.yaml", atomically: true, encoding: .utf8)
        #expect(try SecretFile.ensure(forConfig: directory + "/inline.yaml") == nil)
    }

    @Test("task executors have default resources per slot, or the ones given")
    func taskExecutorResources() throws {
        let configuration = try parse(minimal + """

            taskexecutors:
              - { id: te1, slots: 2, data: "127.0.0.1:7001" }
              - { id: te2, slots: 4, data: "127.0.0.1:7002", resources: { cpu: 8, taskHeap: 8GiB, extended: { gpu: 2 } } }
            """)
        #expect(configuration.taskExecutors[0].resources == ResourceProfile(
            cpuMillis: 2000, taskHeapBytes: 1 << 30, managedMemoryBytes: 1 << 29, networkMemoryBytes: 1 << 27))
        #expect(configuration.taskExecutors[1].resources == ResourceProfile(cpuMillis: 8000, taskHeapBytes: 8 << 30, extended: ["gpu": 2]))
    }

    @Test("the secret never shows in descriptions, which end up in logs")
    func secretRedacted() throws {
        let configuration = try parse(minimal)
        for text in ["\(configuration)", String(reflecting: configuration), "\(configuration.rpc)", String(reflecting: configuration.rpc), "\([configuration])"] {
            #expect(!text.contains("a-secret-of-some-length"), "\(text)")
            #expect(!text.contains("97, 45, 115"), "\(text)")
        }
    }
}
