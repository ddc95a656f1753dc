import BatonCore
import Testing

@Suite("BatchQueue: a run of posts taken at once")
struct BatchQueueTests {
    @Test("a take hands out everything posted since the last one, in order; after finish, what is left and then nil")
    func takesRunsInOrder() async {
        let queue = BatchQueue<Int>()
        for value in 0..<5 { queue.post(value) }
        #expect(await queue.takeAll() == [0, 1, 2, 3, 4])
        queue.post(5)
        queue.post(6)
        queue.finish()
        #expect(!queue.post(7))
        #expect(await queue.takeAll() == [5, 6])
        #expect(await queue.takeAll() == nil)
    }

    @Test("a take waits for the next post")
    func takeWaits() async {
        let queue = BatchQueue<String>()
        async let taken = queue.takeAll()
        try? await Task.sleep(for: .milliseconds(20))
        queue.post("late")
        #expect(await taken == ["late"])
    }
}
