import BatonConfig
import BatonEtcd
import Foundation
import Testing

@Suite("etcd watches over the JSON gateway, against a real etcd", .serialized)
struct EtcdWatchTests {
    /// Collects a watch's messages until `until` holds for what arrived (or 10 s pass).
    func collect(
        _ stream: AsyncThrowingStream<EtcdWatchMessage, any Error>, until: @escaping @Sendable ([EtcdWatchMessage]) -> Bool
    ) async throws -> [EtcdWatchMessage] {
        try await withThrowingTaskGroup(of: [EtcdWatchMessage]?.self) { group in
            group.addTask {
                var seen: [EtcdWatchMessage] = []
                for try await message in stream {
                    seen.append(message)
                    if until(seen) { return seen }
                }
                return seen
            }
            group.addTask {
                try await Task.sleep(for: .seconds(10))
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            return try #require(first, "the watch did not deliver in 10 s")
        }
    }

    static func events(_ messages: [EtcdWatchMessage]) -> [EtcdWatchEvent] {
        messages.flatMap { message -> [EtcdWatchEvent] in
            if case .events(let events, _) = message { return events }
            return []
        }
    }

    @Test("a watch delivers puts and deletes under its range in revision order, and nothing outside it")
    func putsAndDeletes() async throws {
        try await withLocalEtcd { _, client in
            let start = try await client.put(bytes("w/before"), bytes("0"))
            let stream = client.watch(bytes("w/"), rangeEnd: bytes("w0"), startRevision: start + 1)
            let watching = Task {
                try await collect(stream) { seen in
                    Self.events(seen).count >= 3
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            try await client.put(bytes("w/a"), bytes("1"))
            try await client.put(bytes("x/outside"), bytes("2"))
            try await client.put(bytes("w/b"), bytes("3"))
            try await client.delete(bytes("w/a"))
            let messages = try await watching.value
            guard case .created = messages.first else { Issue.record("the first message is not created: \(messages)"); return }
            let events = Self.events(messages)
            #expect(events.map(\.kind) == [.put, .put, .delete])
            #expect(events.map { String(decoding: $0.keyValue.key, as: UTF8.self) } == ["w/a", "w/b", "w/a"])
            #expect(events[1].keyValue.value == bytes("3"))
            #expect(events.map(\.keyValue.modRevision) == events.map(\.keyValue.modRevision).sorted())
        }
    }

    @Test("a watch from a compacted revision says so, with the compaction's revision, and ends")
    func compactedRevision() async throws {
        try await withLocalEtcd { _, client in
            let first = try await client.put(bytes("c/key"), bytes("1"))
            try await client.put(bytes("c/key"), bytes("2"))
            let last = try await client.put(bytes("c/key"), bytes("3"))
            try await client.compact(revision: last)
            let messages = try await collect(client.watch(bytes("c/key"), startRevision: first)) { _ in false }
            #expect(messages.contains(.compacted(compactRevision: last)), "\(messages)")
            #expect(!messages.contains { if case .events = $0 { true } else { false } })
        }
    }

    @Test("a watch on endpoints that are all down fails as unavailable")
    func noEndpoint() async throws {
        let client = try EtcdClient(endpoints: ["http://127.0.0.1:\(FreePort.next())"])
        await #expect {
            for try await _ in client.watch(bytes("k")) {}
        } throws: { error in
            (error as? EtcdError)?.code == .unavailable
        }
    }
}
