import Dispatch

/// Bounded concurrency for the compute routes: at most `permits` requests compute at once, at most
/// `maxQueued` more wait (FIFO); beyond that a request is refused at once (503) instead of piling up memory.
///
/// Work runs on Dispatch's global queue, not on Swift's cooperative pool, so `/healthz` and `/metrics`
/// stay responsive while every permit is computing.
actor ComputeLimiter {
    let permits: Int
    let maxQueued: Int
    private var running = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(permits: Int, maxQueued: Int) {
        self.permits = max(1, permits)
        self.maxQueued = max(0, maxQueued)
    }

    struct Overloaded: Error { let running: Int; let queued: Int }

    /// Takes a permit, waiting in line if all are taken; throws `Overloaded` when the line is full.
    func acquire() async throws {
        if running < permits { running += 1; return }
        guard waiters.count < maxQueued else { throw Overloaded(running: running, queued: waiters.count) }
        await withCheckedContinuation { waiters.append($0) }
        // The releaser handed its permit over: `running` is unchanged.
    }

    func release() {
        if waiters.isEmpty { running -= 1 } else { waiters.removeFirst().resume() }
    }

    /// Runs `work` under a permit on a Dispatch thread.
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        try await acquire()
        let result = await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            DispatchQueue.global().async { c.resume(returning: work()) }
        }
        release()
        return result
    }
}
