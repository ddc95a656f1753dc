// swift-tools-version:6.1
// Baton: a dataflow runtime whose master is highly available.
// Targets are grouped by layer; imports only point down (see README, "Repository organization").
// Baton is Linux-only: member locks are open-file-description locks (F_OFD_SETLKW) and process
// checks read /proc.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Baton",
    products: [
        .executable(name: "baton", targets: ["baton"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // MARK: layer 0: vocabulary shared by every module

        .target(name: "BatonCore", swiftSettings: swiftSettings),

        // MARK: layer 1: pure, deterministic instances (no I/O, no clock, no tasks)

        .target(name: "BatonElection", dependencies: ["BatonCore"], swiftSettings: swiftSettings),
        .target(name: "BatonJobGraph", dependencies: ["BatonCore"], swiftSettings: swiftSettings),
        .target(name: "BatonExecutionGraph", dependencies: ["BatonCore", "BatonJobGraph"], swiftSettings: swiftSettings),
        .target(
            name: "BatonScheduling", dependencies: ["BatonCore", "BatonJobGraph", "BatonExecutionGraph"],
            swiftSettings: swiftSettings),
        .target(name: "BatonResourceManager", dependencies: ["BatonCore", "BatonJobGraph"], swiftSettings: swiftSettings),
        .target(
            name: "BatonCheckpointing",
            dependencies: ["BatonCore", "BatonJobGraph", "BatonExecutionGraph", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonTaskSlots", dependencies: ["BatonCore", "BatonJobGraph", "BatonExecutionGraph"], swiftSettings: swiftSettings),
        .target(
            name: "BatonJobMaster",
            dependencies: ["BatonCore", "BatonJobGraph", "BatonExecutionGraph", "BatonScheduling", "BatonResourceManager"],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonJobManager",
            dependencies: ["BatonCore", "BatonElection", "BatonScheduling", "BatonJobGraph", "BatonExecutionGraph", "BatonResourceManager", "BatonJobMaster", "BatonCheckpointing"],
            swiftSettings: swiftSettings),

        // MARK: layer 2: adapters (C libraries, the HA store, configuration, OS locks)

        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLMDB", path: "Sources/CLMDB", pkgConfig: "lmdb",
                       providers: [.apt(["liblmdb-dev"])]),
        .target(name: "BatonFiles", swiftSettings: swiftSettings),
        .target(
            name: "BatonHAStore",
            dependencies: ["BatonCore", "BatonElection", "BatonFiles"],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonHAStoreSQLite",
            dependencies: ["BatonCore", "BatonHAStore", "CSQLite"],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonHAStoreLMDB",
            dependencies: ["BatonCore", "BatonHAStore", "CLMDB"],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonConfig",
            dependencies: ["BatonCore", "BatonJobGraph", "BatonFiles", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings),
        // etcd's v3 API through its JSON gateway, and a local etcd for development and tests.
        .target(
            name: "BatonEtcd",
            dependencies: [
                "BatonCore", "BatonConfig", "BatonProcessControl",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonHAStoreEtcd",
            dependencies: ["BatonCore", "BatonHAStore", "BatonEtcd", "BatonMemberLocks"],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonHAStoreSelection",
            dependencies: ["BatonCore", "BatonConfig", "BatonHAStore", "BatonHAStoreSQLite", "BatonHAStoreLMDB", "BatonHAStoreEtcd", "BatonMemberLocks"],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonStoreRecords",
            dependencies: ["BatonCore", "BatonHAStore", "BatonJobGraph", "BatonExecutionGraph", "BatonCheckpointing", "BatonFiles", "BatonJobMaster", "BatonJobManager"],
            swiftSettings: swiftSettings),
        .target(name: "BatonMemberLocks", dependencies: ["BatonCore"], swiftSettings: swiftSettings),
        .target(name: "BatonProcessControl", swiftSettings: swiftSettings),
        .target(name: "BatonOperators", dependencies: ["BatonCore", "BatonJobGraph", "BatonFiles"], swiftSettings: swiftSettings),
        .target(
            name: "BatonDataPlane",
            dependencies: [
                "BatonCore", "BatonJobGraph", "BatonOperators", "BatonRPC", "BatonWire",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonWire",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Proto"],
            swiftSettings: swiftSettings),
        // Mutual TLS for RPC, the data plane and REST: a cluster's certificates, and the contexts
        // that load them.
        .target(
            name: "BatonTLS",
            dependencies: [
                "BatonFiles",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonRPC",
            dependencies: [
                "BatonCore", "BatonWire", "BatonTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),

        .target(
            name: "BatonAudit",
            dependencies: [
                "BatonStoreRecords", "BatonJobManager",
                "BatonCore", "BatonElection", "BatonExecutionGraph", "BatonHAStore", "BatonJobGraph",
                "BatonCheckpointing", "BatonOperators",
            ],
            swiftSettings: swiftSettings),

        // MARK: layer 3: services (actors that carry out what the instances decide) and the simulator

        .target(
            name: "BatonMasterService",
            dependencies: [
                "BatonMetrics",
                "BatonCheckpointing", "BatonFiles", "BatonStoreRecords", "BatonOperators",
                "BatonCore", "BatonElection", "BatonHAStore", "BatonMemberLocks", "BatonConfig", "BatonJobGraph",
                "BatonExecutionGraph", "BatonJobMaster", "BatonJobManager", "BatonResourceManager", "BatonRPC", "BatonWire", "BatonWireMapping", "BatonClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonTaskRuntime",
            dependencies: [
                "BatonMetrics", "BatonCore", "BatonJobGraph", "BatonOperators", "BatonDataPlane", "BatonCheckpointing", "BatonFiles"],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonWireMapping",
            dependencies: [
                "BatonCore", "BatonWire", "BatonJobGraph", "BatonExecutionGraph", "BatonDataPlane", "BatonTaskRuntime", "BatonCheckpointing",
                "BatonJobManager",
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonTaskExecutor",
            dependencies: [
                "BatonMetrics",
                "BatonTaskSlots",
                "BatonCore", "BatonConfig", "BatonHAStore", "BatonMemberLocks", "BatonRPC", "BatonWire", "BatonWireMapping",
                "BatonDataPlane", "BatonOperators", "BatonTaskRuntime", "BatonExecutionGraph", "BatonClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonClient",
            dependencies: [
                "BatonCore", "BatonElection", "BatonConfig", "BatonHAStore", "BatonHAStoreSelection", "BatonRPC", "BatonWire", "BatonTLS",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonSimulation",
            dependencies: [
                "BatonCore", "BatonElection", "BatonJobGraph", "BatonExecutionGraph", "BatonScheduling",
                "BatonResourceManager", "BatonJobMaster", "BatonJobManager", "BatonTaskSlots", "BatonCheckpointing",
                "BatonStoreRecords", "BatonAudit",
            ],
            swiftSettings: swiftSettings),

        // MARK: layer 4: tools and the command line

        .target(
            name: "BatonGroup",
            dependencies: [
                "BatonCore", "BatonConfig",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonMetrics",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonREST",
            dependencies: [
                "BatonMetrics", "BatonCore", "BatonConfig", "BatonElection", "BatonHAStore", "BatonMemberLocks", "BatonClient", "BatonWire",
                "BatonJobMaster", "BatonJobGraph", "BatonAudit",
                "BatonTLS",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonStatus",
            dependencies: [
                "BatonCore", "BatonConfig", "BatonElection", "BatonHAStore", "BatonHAStoreSelection", "BatonMemberLocks", "BatonClient",
                "BatonWire", "BatonJobManager", "BatonJobMaster", "BatonStoreRecords", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonBench",
            dependencies: [
                "BatonStoreRecords", "BatonJobManager",
                "BatonCore", "BatonConfig", "BatonElection", "BatonHAStore", "BatonHAStoreSelection", "BatonEtcd",
                "BatonMemberLocks", "BatonStatus", "BatonProcessControl", "BatonJobGraph", "BatonExecutionGraph",
                "BatonScheduling", "BatonResourceManager", "BatonJobMaster", "BatonCheckpointing", "BatonDataPlane", "BatonFiles",
                "BatonOperators", "BatonRPC", "BatonTaskRuntime", "BatonWire", "BatonWireMapping", "BatonSimulation", "BatonClient",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonChaos",
            dependencies: [
                "BatonStoreRecords", "BatonJobManager",
                "BatonAudit", "BatonClient", "BatonConfig", "BatonCore", "BatonElection", "BatonHAStore", "BatonOperators", "BatonHAStoreSelection", "BatonJobGraph", "BatonJobMaster",
                "BatonProcessControl", "BatonStatus", "BatonWire", "BatonEtcd", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "BatonCLI",
            dependencies: [
                "BatonChaos", "BatonSimulation",
                "BatonAudit",
                "BatonCore", "BatonConfig", "BatonFiles", "BatonHAStore", "BatonHAStoreSelection", "BatonMasterService",
                "BatonGroup", "BatonStatus", "BatonBench", "BatonMemberLocks", "BatonElection", "BatonClient",
                "BatonTaskExecutor", "BatonJobGraph", "BatonJobMaster", "BatonWire", "BatonREST",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(name: "baton", dependencies: ["BatonCLI"], swiftSettings: swiftSettings),
        // tools/baton-store: dump, check and hammer a store (dev and ops; the process tests use it).
        .executableTarget(
            name: "baton-store",
            dependencies: [
                "BatonCore", "BatonConfig", "BatonElection", "BatonHAStore", "BatonHAStoreSelection", "BatonEtcd", "BatonProcessControl", "BatonClient", "BatonTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "tools/baton-store",
            swiftSettings: swiftSettings),
        .target(
            name: "BatonTestKit",
            dependencies: ["BatonCore", "BatonConfig", "BatonProcessControl"],
            swiftSettings: swiftSettings),
        // The fuzz targets: bytes from outside a process fed to the decoders it uses (frames, wire
        // messages, configs, job specs, checkpoint metadata, store values); docs/fuzzing.md.
        .target(
            name: "BatonFuzzTargets",
            dependencies: [
                "BatonCore", "BatonRPC", "BatonWire", "BatonWireMapping", "BatonConfig", "BatonCheckpointing", "BatonStoreRecords",
                "BatonHAStore", "BatonExecutionGraph", "BatonElection", "BatonJobGraph", "BatonJobManager", "BatonResourceManager",
                "BatonDataPlane", "BatonOperators", "BatonTaskRuntime", "BatonJobMaster",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings),
        // tools/baton-fuzz: the fuzz targets as a libFuzzer binary (tools/fuzz builds it so), or a
        // replayer of inputs and the writer of the seeds.
        .executableTarget(
            name: "baton-fuzz", dependencies: ["BatonFuzzTargets"], path: "tools/baton-fuzz", swiftSettings: swiftSettings),

        // MARK: tests

        .testTarget(name: "BatonCoreTests", dependencies: ["BatonCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonEtcdTests",
            dependencies: ["BatonCore", "BatonEtcd", "BatonHAStore", "BatonHAStoreEtcd", "BatonConfig", "BatonProcessControl", "BatonMemberLocks"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonCheckpointingTests", dependencies: ["BatonCore", "BatonJobGraph", "BatonExecutionGraph", "BatonCheckpointing"],
            swiftSettings: swiftSettings),
        .testTarget(name: "BatonJobGraphTests", dependencies: ["BatonCore", "BatonJobGraph"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonExecutionGraphTests", dependencies: ["BatonCore", "BatonJobGraph", "BatonExecutionGraph"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonSchedulingTests",
            dependencies: ["BatonCore", "BatonJobGraph", "BatonExecutionGraph", "BatonScheduling"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonResourceManagerTests", dependencies: ["BatonCore", "BatonJobGraph", "BatonResourceManager"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonTaskSlotsTests", dependencies: ["BatonTestKit", "BatonCore", "BatonJobGraph", "BatonExecutionGraph", "BatonTaskSlots"],
            exclude: ["Scenarios"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonJobMasterTests",
            dependencies: ["BatonTestKit", 
                "BatonCore", "BatonJobGraph", "BatonExecutionGraph", "BatonScheduling", "BatonResourceManager",
                "BatonJobMaster", "BatonSimulation", "BatonConfig", "BatonBench", "BatonProcessControl",
            ],
            exclude: ["ReconciliationScenarios"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonJobManagerTests",
            dependencies: [
                "BatonCore", "BatonElection", "BatonJobGraph", "BatonExecutionGraph", "BatonResourceManager", "BatonJobMaster",
                "BatonCheckpointing", "BatonJobManager", "BatonSimulation", "BatonScheduling",
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonElectionTests", dependencies: ["BatonTestKit", "BatonCore", "BatonElection"],
            exclude: ["Scenarios"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonHAStoreTests",
            dependencies: [
                "BatonProcessControl", "BatonCore", "BatonElection", "BatonHAStore", "BatonHAStoreSQLite", "BatonHAStoreLMDB", "BatonHAStoreEtcd",
                "BatonEtcd", "BatonTestKit",
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonConfigTests",
            dependencies: ["BatonProcessControl", "BatonCore", "BatonConfig", "BatonJobGraph", "BatonTestKit"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonMemberLocksTests", dependencies: ["BatonProcessControl", "BatonCore", "BatonMemberLocks", "BatonTestKit"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonRPCTests",
            dependencies: [
                "BatonCore", "BatonWire", "BatonRPC", "BatonTLS", .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonTaskRuntimeTests",
            dependencies: [
                "BatonCore", "BatonJobGraph", "BatonOperators", "BatonDataPlane", "BatonTaskRuntime", "BatonRPC", "BatonCheckpointing",
                "BatonAudit", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonMasterServiceTests",
            dependencies: [
                "BatonStoreRecords", "BatonJobManager",
                "BatonCore", "BatonElection", "BatonExecutionGraph", "BatonHAStore", "BatonHAStoreSQLite", "BatonMasterService",
                "BatonCheckpointing", "BatonProcessControl", "BatonTestKit", "BatonConfig", "BatonHAStoreSelection", "BatonJobGraph", "BatonWire",
                "BatonJobMaster", "BatonResourceManager", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonAuditTests",
            dependencies: [
                "BatonJobMaster",
                "BatonStoreRecords",
                "BatonAudit", "BatonChaos", "BatonCore", "BatonElection", "BatonExecutionGraph", "BatonHAStore", "BatonHAStoreSQLite", "BatonJobGraph",
                "BatonMasterService", "BatonCheckpointing", "BatonProcessControl",
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonSimulationTests", dependencies: ["BatonCore", "BatonElection", "BatonSimulation"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonRESTTests", dependencies: ["BatonREST", "BatonWire", "BatonConfig"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonProcessTests",
            dependencies: [
                "BatonStoreRecords", "BatonJobManager",
                "baton", "baton-store", "BatonClient", "BatonTLS", "BatonExecutionGraph", "BatonFiles", "BatonCore", "BatonConfig", "BatonElection", "BatonHAStore", "BatonHAStoreSelection",
                "BatonMemberLocks", "BatonStatus", "BatonTestKit", "BatonProcessControl", "BatonRPC", "BatonWire", "BatonMasterService", "BatonEtcd",
                "BatonGroup", "BatonJobMaster", "BatonCheckpointing", "BatonChaos", "BatonOperators", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BatonFuzzTests",
            dependencies: [
                "BatonFuzzTargets", "BatonCore", "BatonConfig", "BatonRPC", "BatonWire", "BatonWireMapping", "BatonCheckpointing",
                "BatonExecutionGraph", "BatonHAStore", "BatonJobManager", "BatonStoreRecords",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings),
    ]
)
