public import BatonCore
import Foundation

/// A master group's configuration: an `ha-config/*.yaml` file (documented key by key in
/// `ha-config/README.md`). Relative paths in it resolve against the folder that holds the file.
public struct HAConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// A short description: the file (the full contents stay out of logs).
    public var description: String { "HAConfiguration(\(file))" }

    /// The config file, as an absolute path.
    public var file: String
    /// The folder holding the config file; relative paths resolve against it.
    public var directory: String
    /// The cluster's name (`cluster`).
    public var cluster: Identifier
    public var store: StoreConfiguration
    public var election: ElectionConfiguration
    public var masters: [MasterConfiguration]
    public var taskExecutors: [TaskExecutorConfiguration]
    public var checkpoints: CheckpointConfiguration
    public var group: GroupConfiguration
    public var rpc: RPCSettings
    /// How long a new leader waits for the task executors to report what they hold before the
    /// attempts nobody reported count as failed (`reconciliation.window`, default three heartbeats).
    public var reconciliationWindow: Duration = .seconds(3)
    /// How many ended runs the job history keeps, and for how long (`jobs.history.retain`,
    /// `jobs.history.maxAge`); the oldest go first, with what the store kept of them.
    public var jobHistoryRetain = 1000
    public var jobHistoryMaxAge: Duration = .seconds(7 * 86_400)
    /// A running job's ExecutionGraph is snapshotted every this many change records, and the
    /// records the snapshot covers deleted (`jobs.snapshotEvery`): a new leader reads at most
    /// that many records per job after its snapshot, however long the job has run.
    public var jobSnapshotEvery = 1000
    /// The folders jobs may read and write (`jobs.allowedPaths`, absolute); nil: the config's
    /// folder and the folder of the job spec file (see `jobPathRoots`).
    public var jobAllowedPaths: [String]? = nil
    /// Per task executor, the memory its blocking (batch) results may hold (`blockingResults.memory`),
    /// and the folder they spill to past it (`blockingResults.dir`; each task executor uses
    /// `<dir>/<id>`, emptied when it starts).
    public var blockingResultMemoryBytes = 256 << 20
    public var blockingResultDirectory = ""
    /// The mode of every file a member creates (`files.mode`, default 0600): store, member locks,
    /// checkpoints, savepoints, outputs, spill files; folders get it with `x` beside each `r`.
    public var fileMode: FileMode = .private
    /// The REST API's access (`rest`).
    public var rest = RESTSettings()

    /// Who may use the REST API (`rest`). Its descriptions never show the token.
    public struct RESTSettings: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
        /// The bearer token requests that change the cluster (submit, cancel, stop, savepoint)
        /// carry, read from `rest.tokenFile`; nil when the config names none, and then REST
        /// accepts no such request.
        public var token: [UInt8]? = nil
        /// The file it was read from.
        public var tokenFile: String? = nil

        public init() {}

        public var description: String { "RESTSettings(token: \(token == nil ? "none" : "<redacted>"), tokenFile: \(tokenFile ?? "none"))" }
        public var debugDescription: String { description }
    }

    public struct StoreConfiguration: Sendable, Hashable {
        public enum Backend: String, Sendable, Hashable, CaseIterable {
            case sqlite, lmdb, etcd
        }
        public var backend: Backend
        /// The store file, absolute; for etcd, where the store is: `etcd://ENDPOINTS/PREFIX`
        /// (for logs and status).
        public var path: String
        /// etcd only: the client URLs of the etcd cluster's members (`http://HOST:PORT`).
        public var endpoints: [String] = []
        /// etcd only: the key prefix every key of this group's store starts with (default
        /// `/baton/<cluster>/`); groups sharing one etcd cluster need different prefixes.
        public var prefix: String = ""
        /// etcd only: what one transaction may carry, as the etcd cluster was started with
        /// (`--max-txn-ops`, `--max-request-bytes`; etcd's defaults 128 and 1.5 MiB). A write past
        /// either is refused whole, naming the flag.
        public var maxTxnOps = 128
        public var maxRequestBytes = 1_572_864
        /// LMDB only: the map size, which bounds the store's size. Default 1 GiB.
        public var mapSizeBytes: UInt64
        /// SQLite only: how long a writer waits for another one (a safety net). Default 5s.
        public var busyTimeout: Duration

        public init(backend: Backend, path: String, mapSizeBytes: UInt64 = 1 << 30, busyTimeout: Duration = .seconds(5)) {
            self.backend = backend
            self.path = path
            self.mapSizeBytes = mapSizeBytes
            self.busyTimeout = busyTimeout
        }
    }

    public struct ElectionConfiguration: Sendable, Hashable {
        /// How long a term lasts without a renewal (`election.lease`, default 2s).
        public var leaseDuration: Duration
        /// How often the leader renews (`election.renew`, default 500ms).
        public var renewInterval: Duration
        /// How often a standby reads the leadership record (`election.poll`, default: the renew interval).
        public var pollInterval: Duration

        public init(leaseDuration: Duration = .seconds(2), renewInterval: Duration = .milliseconds(500), pollInterval: Duration? = nil) {
            self.leaseDuration = leaseDuration
            self.renewInterval = renewInterval
            self.pollInterval = pollInterval ?? renewInterval
        }
    }

    public struct MasterConfiguration: Sendable, Hashable {
        public var id: MemberID
        /// The RPC address the master publishes when it leads.
        public var rpc: Endpoint
        /// The REST address.
        public var rest: Endpoint
        /// The host (machine) it runs on, when the config places members on hosts: `baton group
        /// --host H` runs the members of host H.
        public var host: Identifier? = nil
    }

    public struct TaskExecutorConfiguration: Sendable, Hashable {
        public var id: ResourceID
        /// Default slots: the task executor's resources cut into this many equal shares.
        public var slots: Int
        /// The data-plane address.
        public var data: Endpoint
        /// The task executor's total resources (default per slot: 1 core, 512 MiB task heap,
        /// 256 MiB managed memory, 64 MiB network memory).
        public var resources: ResourceProfile
        /// Where it serves its Prometheus metrics (`GET /metrics`); none when absent.
        public var metrics: Endpoint? = nil
        /// The host (machine) it runs on, when the config places members on hosts.
        public var host: Identifier? = nil

        public static func defaultResources(slots: Int) -> ResourceProfile {
            ResourceProfile(
                cpuMillis: Int64(slots) * 1000, taskHeapBytes: Int64(slots) << 29, managedMemoryBytes: Int64(slots) << 28,
                networkMemoryBytes: Int64(slots) << 26)
        }
    }

    /// RPC between clients, masters and task executors (`rpc`). Its descriptions never show the
    /// secret (configs end up in debug logs).
    public struct RPCSettings: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
        public var description: String {
            "RPCSettings(secret: <\(secret.count) bytes, redacted>, heartbeat: \(DurationText.format(heartbeatInterval)), "
                + "heartbeatTimeout: \(DurationText.format(heartbeatTimeout)), maxFrame: \(maxFrameBytes))"
        }
        public var debugDescription: String { description }

        /// The cluster's shared secret (`rpc.secret`, or read from `rpc.secretFile`).
        public var secret: [UInt8]
        /// How often both sides of a connection send heartbeats (`rpc.heartbeat`, default 1s).
        public var heartbeatInterval: Duration
        /// Silence after which a connection is lost (`rpc.heartbeatTimeout`, default 5s).
        public var heartbeatTimeout: Duration
        /// The largest frame accepted (`rpc.maxFrame`, default 16MiB).
        public var maxFrameBytes: Int
        /// The file the secret was read from (`rpc.secretFile`); nil when the config holds it
        /// inline (`rpc.secret`), which members warn about when they start.
        public var secretFile: String? = nil
        /// The TLS folder (`rpc.tls.dir`, absolute): `ca.pem`, and `<id>.pem` and `<id>.key` for
        /// every member and for `client` (what `baton certs` writes). nil: plain TCP, which only
        /// a config whose every address is loopback may use.
        public var tlsDirectory: String? = nil
    }

    /// The id whose certificate clients (`baton submit`, `baton status`, ...) present; no member
    /// may use it when the config has TLS.
    public static let clientIdentity = "client"

    public struct CheckpointConfiguration: Sendable, Hashable {
        /// The checkpoint folder, absolute (`checkpoints.dir`); every member must see it.
        public var directory: String
        /// The interval of jobs whose spec names none (`checkpoints.interval`).
        public var interval: Duration
        /// Completed checkpoints kept per job (`checkpoints.retain`).
        public var retain: Int
        /// A checkpoint not complete within this is aborted (`checkpoints.timeout`, default 60s).
        public var timeout: Duration = .seconds(60)
        /// Where savepoints go (`checkpoints.savepoints`, default `<dir>/savepoints`).
        public var savepointDirectory: String
    }

    public struct GroupConfiguration: Sendable, Hashable {
        /// How long `baton group` waits before restarting a member that died (`group.restartDelay`, default 1s).
        public var restartDelay: Duration
    }

    public func master(_ id: MemberID) -> MasterConfiguration? { masters.first { $0.id == id } }
}

extension HAConfiguration {
    /// Loads and validates the config at `path`.
    ///
    /// - Throws: `ConfigError` naming the file, the key path and the problem.
    public static func load(path: String) throws -> HAConfiguration {
        let file = absolutePath(path, relativeTo: FileManager.default.currentDirectoryPath)
        return try parse(try YAMLValue.load(path: file), file: file)
    }

    /// Parses the text of a config as if it were the file at `file` (absolute).
    public static func parse(text: String, file: String) throws -> HAConfiguration {
        try parse(try YAMLValue.parse(text, file: file), file: file)
    }

    /// `store` for the etcd backend: `endpoints` (required, a list of `http://HOST:PORT`) and
    /// `prefix` (default `/baton/<cluster>/`, always ending in `/`); `path` does not apply.
    static func etcdStore(_ store: YAMLMapping, cluster: Identifier) throws -> StoreConfiguration {
        if let path = store["path"] { throw path.error("path does not apply to the etcd backend: name its endpoints") }
        let endpointsValue = try store.required("endpoints")
        let endpoints = try endpointsValue.sequence().map { value in
            let text = try value.nonEmptyString()
            guard let url = URL(string: text), url.scheme == "http", let host = url.host, !host.isEmpty, url.port != nil,
                url.path.isEmpty || url.path == "/"
            else {
                throw value.error("'\(text)' is not an etcd endpoint: write http://HOST:PORT (etcd's client URL)")
            }
            return text.hasSuffix("/") ? String(text.dropLast()) : text
        }
        guard !endpoints.isEmpty else { throw endpointsValue.error("endpoints is empty: name at least one etcd member") }
        var prefix = "/baton/\(cluster)/"
        if let value = store["prefix"] {
            prefix = try value.nonEmptyString()
            guard prefix.hasPrefix("/"), !prefix.contains("//"), prefix.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                throw value.error("prefix '\(prefix)' must start with / and hold no spaces, empty segments or non-ASCII characters")
            }
            if !prefix.hasSuffix("/") { prefix += "/" }
        }
        var configuration = StoreConfiguration(backend: .etcd, path: "etcd://\(endpoints.joined(separator: ","))\(prefix)")
        configuration.endpoints = endpoints
        configuration.prefix = prefix
        if let value = store["maxTxnOps"] { configuration.maxTxnOps = try value.int(in: 16...1_000_000) }
        if let value = store["maxRequestBytes"] { configuration.maxRequestBytes = Int(try value.byteSize(in: (64 << 10)...(2 << 30))) }
        return configuration
    }

    static func parse(_ root: YAMLValue, file: String) throws -> HAConfiguration {
        let directory = (file as NSString).deletingLastPathComponent
        let top = try root.mapping(allowing: [
            "cluster", "store", "election", "masters", "taskexecutors", "checkpoints", "group", "rpc", "reconciliation", "jobs", "blockingResults", "files",
            "rest",
        ])
        let cluster = try top["cluster"]?.identifier() ?? "local"

        let storeValue = try top.required("store")
        let store = try storeValue.mapping(allowing: ["backend", "path", "mapSize", "busyTimeout", "endpoints", "prefix", "maxTxnOps", "maxRequestBytes"])
        let backendName = try store["backend"]?.choice(StoreConfiguration.Backend.allCases.map(\.rawValue)) ?? "sqlite"
        let backend = StoreConfiguration.Backend(rawValue: backendName)!
        var storeConfiguration: StoreConfiguration
        if backend == .etcd {
            storeConfiguration = try etcdStore(store, cluster: cluster)
        } else {
            for key in ["endpoints", "prefix", "maxTxnOps", "maxRequestBytes"] {
                if let value = store[key] { throw value.error("\(key) applies to the etcd backend only") }
            }
            let storePath = absolutePath(try store.required("path").nonEmptyString(), relativeTo: directory)
            storeConfiguration = StoreConfiguration(backend: backend, path: storePath)
        }
        if let mapSize = store["mapSize"] {
            guard backend == .lmdb else { throw mapSize.error("mapSize applies to the lmdb backend only") }
            storeConfiguration.mapSizeBytes = try mapSize.byteSize(in: (1 << 20)...(1 << 40))
        }
        if let busyTimeout = store["busyTimeout"] {
            guard backend == .sqlite else { throw busyTimeout.error("busyTimeout applies to the sqlite backend only") }
            storeConfiguration.busyTimeout = try busyTimeout.duration(in: .milliseconds(1)...(.seconds(600)))
        }

        var election = ElectionConfiguration()
        if let electionValue = top["election"] {
            let mapping = try electionValue.mapping(allowing: ["lease", "renew", "poll"])
            if let lease = mapping["lease"] {
                election.leaseDuration = try lease.duration(in: .milliseconds(100)...(.seconds(3600)))
            }
            if let renew = mapping["renew"] {
                election.renewInterval = try renew.duration(in: .milliseconds(10)...(.seconds(3600)))
            }
            election.pollInterval = election.renewInterval
            if let poll = mapping["poll"] {
                election.pollInterval = try poll.duration(in: .milliseconds(10)...(.seconds(3600)))
            }
            guard election.renewInterval * 2 <= election.leaseDuration else {
                throw (mapping["renew"] ?? electionValue).error(
                    "renew (\(DurationText.format(election.renewInterval))) must be at most half of lease "
                        + "(\(DurationText.format(election.leaseDuration))), so a leader can retry a failed renewal")
            }
            guard election.pollInterval < election.leaseDuration else {
                throw (mapping["poll"] ?? electionValue).error("poll must be shorter than lease")
            }
        }

        let mastersValue = try top.required("masters")
        var masters: [MasterConfiguration] = []
        var endpoints: [Endpoint: String] = [:]
        func claim(_ endpoint: Endpoint, by value: YAMLValue) throws {
            if let owner = endpoints[endpoint] {
                throw value.error("address \(endpoint) is already used by \(owner)")
            }
            endpoints[endpoint] = value.keyPath
        }
        var placements = HostPlacements()
        for value in try mastersValue.sequence() {
            let mapping = try value.mapping(allowing: ["id", "rpc", "rest", "host"])
            let idValue = try mapping.required("id")
            let id: MemberID = try idValue.identifier()
            if masters.contains(where: { $0.id == id }) { throw idValue.error("master id '\(id)' is used twice") }
            let rpcValue = try mapping.required("rpc")
            let restValue = try mapping.required("rest")
            let master = MasterConfiguration(
                id: id, rpc: try rpcValue.endpoint(), rest: try restValue.endpoint(), host: try mapping["host"]?.identifier())
            try placements.note(master.host, of: value)
            try claim(master.rpc, by: rpcValue)
            try claim(master.rest, by: restValue)
            masters.append(master)
        }
        guard !masters.isEmpty else { throw mastersValue.error("at least one master is needed") }

        var taskExecutors: [TaskExecutorConfiguration] = []
        if let executorsValue = top["taskexecutors"] {
            for value in try executorsValue.sequence() {
                let mapping = try value.mapping(allowing: ["id", "slots", "data", "resources", "metrics", "host"])
                let idValue = try mapping.required("id")
                let id: ResourceID = try idValue.identifier()
                if taskExecutors.contains(where: { $0.id == id }) || masters.contains(where: { $0.id.rawValue == id.rawValue }) {
                    throw idValue.error("id '\(id)' is used twice")
                }
                let dataValue = try mapping.required("data")
                let slots = try mapping.required("slots").int(in: 1...1024)
                let executor = TaskExecutorConfiguration(
                    id: id, slots: slots, data: try dataValue.endpoint(),
                    resources: try mapping["resources"]?.resourceProfile() ?? TaskExecutorConfiguration.defaultResources(slots: slots),
                    metrics: try mapping["metrics"]?.endpoint(), host: try mapping["host"]?.identifier())
                try placements.note(executor.host, of: value)
                try claim(executor.data, by: dataValue)
                if let metrics = executor.metrics, let metricsValue = mapping["metrics"] { try claim(metrics, by: metricsValue) }
                taskExecutors.append(executor)
            }
        }

        var checkpoints = CheckpointConfiguration(
            directory: absolutePath("data/checkpoints", relativeTo: directory), interval: .seconds(1), retain: 3, savepointDirectory: "")
        var savepoints: String?
        if let checkpointsValue = top["checkpoints"] {
            let mapping = try checkpointsValue.mapping(allowing: ["dir", "interval", "retain", "timeout", "savepoints"])
            if let dir = mapping["dir"] {
                checkpoints.directory = absolutePath(try dir.nonEmptyString(), relativeTo: directory)
            }
            if let timeout = mapping["timeout"] {
                checkpoints.timeout = try timeout.duration(in: .milliseconds(100)...(.seconds(86_400)))
            }
            if let value = mapping["savepoints"] { savepoints = absolutePath(try value.nonEmptyString(), relativeTo: directory) }
            if let interval = mapping["interval"] {
                checkpoints.interval = try interval.duration(in: .milliseconds(10)...(.seconds(86_400)))
            }
            if let retain = mapping["retain"] { checkpoints.retain = try retain.int(in: 1...1000) }
        }
        checkpoints.savepointDirectory = savepoints ?? checkpoints.directory + "/savepoints"

        var group = GroupConfiguration(restartDelay: .seconds(1))
        if let groupValue = top["group"] {
            let mapping = try groupValue.mapping(allowing: ["restartDelay"])
            if let delay = mapping["restartDelay"] {
                group.restartDelay = try delay.duration(in: .zero...(.seconds(3600)))
            }
        }

        let rpcValue = try top.required("rpc")
        let rpcMapping = try rpcValue.mapping(allowing: ["secret", "secretFile", "heartbeat", "heartbeatTimeout", "maxFrame", "tls"])
        var secret: [UInt8]
        var secretFile: String?
        switch (rpcMapping["secret"], rpcMapping["secretFile"]) {
        case (let value?, nil):
            secret = Array(try value.nonEmptyString().utf8)
        case (nil, let value?):
            let path = absolutePath(try value.nonEmptyString(), relativeTo: directory)
            secret = try SecretFile.read(path, value: value, configFile: file)
            secretFile = path
        case (nil, nil):
            throw rpcValue.error("give the cluster's shared secret as secret or secretFile", code: .missingKey)
        case (_?, _?):
            throw rpcValue.error("give either secret or secretFile, not both")
        }
        guard secret.count >= 8 else { throw rpcValue.error("the shared secret must be at least 8 bytes long") }
        let heartbeat = try rpcMapping["heartbeat"]?.duration(in: .milliseconds(10)...(.seconds(60))) ?? .seconds(1)
        let heartbeatTimeout = try rpcMapping["heartbeatTimeout"]?.duration(in: .milliseconds(50)...(.seconds(600))) ?? .seconds(5)
        guard heartbeatTimeout >= heartbeat * 2 else {
            throw (rpcMapping["heartbeatTimeout"] ?? rpcValue).error("heartbeatTimeout must be at least twice heartbeat")
        }
        let maxFrame = try rpcMapping["maxFrame"]?.byteSize(in: 4096...(1 << 30)) ?? (16 << 20)
        var rpc = RPCSettings(secret: secret, heartbeatInterval: heartbeat, heartbeatTimeout: heartbeatTimeout, maxFrameBytes: Int(maxFrame))
        rpc.secretFile = secretFile
        if let tls = rpcMapping["tls"] {
            let mapping = try tls.mapping(allowing: ["dir"])
            rpc.tlsDirectory = absolutePath(try mapping.required("dir").nonEmptyString(), relativeTo: directory)
            for id in masters.map(\.id.rawValue) + taskExecutors.map(\.id.rawValue) where id == clientIdentity {
                throw tls.error("no member may be called '\(clientIdentity)' with TLS: that certificate is the clients'")
            }
        } else {
            let addresses =
                masters.flatMap { [("masters[\($0.id)].rpc", $0.rpc), ("masters[\($0.id)].rest", $0.rest)] }
                + taskExecutors.flatMap { executor in
                    [("taskexecutors[\(executor.id)].data", executor.data)] + (executor.metrics.map { [("taskexecutors[\(executor.id)].metrics", $0)] } ?? [])
                }
            if let (key, address) = addresses.first(where: { !$0.1.isLoopback }) {
                throw rpcValue.error(
                    "rpc.tls is required: \(key) (\(address)) is not a loopback address, and records, commands and the secret "
                        + "handshake would cross the network in the clear. Add `tls: { dir: tls }` under rpc; "
                        + "`baton certs --config \(file) --out DIR` makes a CA and a certificate per member for it")
            }
        }

        var window = heartbeat * 3
        if let value = top["reconciliation"] {
            let mapping = try value.mapping(allowing: ["window"])
            if let duration = mapping["window"] { window = try duration.duration(in: .milliseconds(50)...(.seconds(600))) }
        }

        if !placements.hosts.isEmpty, storeConfiguration.backend != .etcd {
            throw storeValue.error(
                "members are placed on hosts (\(placements.hosts.map(\.rawValue).sorted().joined(separator: ", "))): their store must be shared by every host, "
                    + "so use backend: etcd")
        }
        var configuration = HAConfiguration(
            file: file, directory: directory, cluster: cluster, store: storeConfiguration, election: election,
            masters: masters, taskExecutors: taskExecutors, checkpoints: checkpoints, group: group, rpc: rpc)
        configuration.reconciliationWindow = window
        configuration.blockingResultDirectory = absolutePath("data/spill", relativeTo: directory)
        if let blocking = top["blockingResults"] {
            let mapping = try blocking.mapping(allowing: ["memory", "dir"])
            if let memory = mapping["memory"] { configuration.blockingResultMemoryBytes = Int(try memory.byteSize(in: 0...(1 << 40))) }
            if let dir = mapping["dir"] { configuration.blockingResultDirectory = absolutePath(try dir.nonEmptyString(), relativeTo: directory) }
        }
        if let rest = top["rest"] {
            let mapping = try rest.mapping(allowing: ["tokenFile"])
            if let value = mapping["tokenFile"] {
                let path = absolutePath(try value.nonEmptyString(), relativeTo: directory)
                configuration.rest.token = try SecretFile.read(path, value: value, configFile: file)
                configuration.rest.tokenFile = path
                guard configuration.rest.token!.count >= 16 else { throw value.error("the REST token in \(path) must be at least 16 bytes long") }
            }
        }
        if let files = top["files"] {
            let mapping = try files.mapping(allowing: ["mode"])
            if let value = mapping["mode"] {
                let text = try value.nonEmptyString()
                guard let mode = FileMode(octal: text) else {
                    throw value.error(
                        "'\(text)' is not a file mode for Baton's files: octal like 0600 or 0640, read and write for the owner, no execute bits")
                }
                configuration.fileMode = mode
            }
        }
        if let jobs = top["jobs"] {
            let mapping = try jobs.mapping(allowing: ["history", "snapshotEvery", "allowedPaths"])
            if let paths = mapping["allowedPaths"] {
                let list = try paths.sequence().map { absolutePath(try $0.nonEmptyString(), relativeTo: directory) }
                guard !list.isEmpty else { throw paths.error("allowedPaths needs at least one folder") }
                configuration.jobAllowedPaths = list
            }
            if let every = mapping["snapshotEvery"] { configuration.jobSnapshotEvery = try every.int(in: 1...1_000_000) }
            if let history = mapping["history"] {
                let retention = try history.mapping(allowing: ["retain", "maxAge"])
                if let retain = retention["retain"] { configuration.jobHistoryRetain = try retain.int(in: 1...1_000_000) }
                if let age = retention["maxAge"] { configuration.jobHistoryMaxAge = try age.duration(in: .seconds(60)...(.seconds(3650 * 86_400))) }
            }
        }
        return configuration
    }

    /// The hosts members are placed on (`masters[].host`, `taskexecutors[].host`), in order of
    /// their names; empty when the config places none (every member runs on one machine).
    public var hosts: [Identifier] {
        Array(Set(masters.compactMap(\.host) + taskExecutors.compactMap(\.host))).sorted { $0.rawValue < $1.rawValue }
    }

    /// Either every member names its host or none does.
    struct HostPlacements {
        private(set) var hosts: Set<Identifier> = []
        private var placed = 0
        private var unplaced = 0

        mutating func note(_ host: Identifier?, of value: YAMLValue) throws {
            if let host { hosts.insert(host); placed += 1 } else { unplaced += 1 }
            if placed > 0 && unplaced > 0 {
                throw value.error("some members name a host and some do not: give every master and task executor a host, or none")
            }
        }
    }

    /// `path` made absolute against `directory`, with `.` and `..` components resolved.
    public static func absolutePath(_ path: String, relativeTo directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : directory + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}
