import Dispatch
import Synchronization

/// Bounded concurrency for the compute routes: at most `permits` requests compute at once, at most
/// `maxQueued` more wait (FIFO); beyond that a request is refused at once (503) instead of piling up memory.
///
/// Work runs on Dispatch's global queue, not on Swift's cooperative pool, so `/healthz` and `/metrics`
/// stay responsive while every permit is computing. The permit count sits behind a lock rather than in
/// an actor: taking a free permit is then a lock, not two executor hops (on a 2-core machine each hop was
/// ~0.1 ms of a ~1.5 ms round trip).
final class ComputeLimiter: Sendable {
    let permits: Int
    let maxQueued: Int
    private struct State {
        var running = 0
        var waiters: [CheckedContinuation<Void, any Error>] = []
    }
    private let state = Mutex(State())

    init(permits: Int, maxQueued: Int) {
        self.permits = max(1, permits)
        self.maxQueued = max(0, maxQueued)
    }

    struct Overloaded: Error { let running: Int; let queued: Int }

    /// Takes a permit, waiting in line if all are taken; throws `Overloaded` when the line is full.
    func acquire() async throws {
        let (permits, maxQueued) = (self.permits, self.maxQueued)
        let gotOne = try state.withLock { s throws(Overloaded) -> Bool in
            if s.running < permits { s.running += 1; return true }
            guard s.waiters.count < maxQueued else { throw Overloaded(running: s.running, queued: s.waiters.count) }
            return false
        }
        if gotOne { return }
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            // The line is checked again under the lock: a permit may have come free, or the line filled.
            let outcome: Result<Void, Overloaded>? = state.withLock { s in
                if s.running < permits { s.running += 1; return .success(()) }
                guard s.waiters.count < maxQueued else { return .failure(Overloaded(running: s.running, queued: s.waiters.count)) }
                s.waiters.append(c)
                return nil
            }
            if let outcome { c.resume(with: outcome.mapError { $0 as any Error }) }
        }
        // A releaser handed its permit over: `running` is unchanged.
    }

    func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            if s.waiters.isEmpty { s.running -= 1; return nil }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }

    /// Runs `work` under a permit on a Dispatch thread.
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            DispatchQueue.global().async { c.resume(returning: work()) }
        }
    }
}
