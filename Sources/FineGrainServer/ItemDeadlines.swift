import Dispatch
import Foundation
import Synchronization

/// Per-item deadlines for reward scoring (DESIGN.md, "The service"; specs/integrations.md §8): every item
/// of a batch gets its own time limit, and the clock of an item starts when work on *that item* starts,
/// not when the request arrived (measuring from submission gives false timeouts under bursts, as reported
/// in PrimeIntellect-ai/verifiers#831). A timed-out item is a distinct outcome, never a silent reward 0.
///
/// Swift cannot kill a running computation, so an item past its deadline is *abandoned*: its worker thread
/// finishes it in the background and the result is dropped, while the rest of the batch continues on a
/// fresh worker. At most `maxAbandoned` workers may be left behind per batch; after that the remaining
/// items are reported `.notRun` instead of being started — bounded threads, and the request never hangs.
/// Items run one at a time, in order (the built-in verifiers take microseconds; a batch is parallel across
/// requests through the compute limiter, not within one).
enum ItemDeadlines {
    enum Outcome<T: Sendable>: Sendable {
        case done(T)
        /// Still running when its own deadline passed (its result, if any, is dropped).
        case timedOut
        /// Not started: too many workers were already abandoned in this batch.
        case notRun
    }

    /// Runs `work(i)` for `i in 0 ..< count` with a deadline of `limit` per item, blocking the caller until
    /// every item has an outcome (at most about `(maxAbandoned + 1) * limit` past the last item's start).
    static func run<T: Sendable>(count: Int, limit: Duration, maxAbandoned: Int = 4,
                                 _ work: @escaping @Sendable (Int) -> T) -> [Outcome<T>] {
        guard count > 0 else { return [] }
        let batch = Batch<T>(count: count)
        var worker = 0
        batch.spawn(worker: worker, work)
        var abandoned = 0
        while true {
            // The active worker's current item and when it started, or nil when the batch is finished.
            guard let live = batch.state.withLock({ s -> (item: Int, started: ContinuousClock.Instant)? in
                s.finished == count ? nil : (s.current, s.started)
            }) else { break }
            let (item, started) = live
            let due = started + limit
            if ContinuousClock.now < due {
                // Woken by every finished item; otherwise at the deadline of the current one.
                _ = batch.progress.wait(timeout: .now() + .nanoseconds(Int(max(1_000, (due - ContinuousClock.now).nanoseconds))))
                continue
            }
            // Past its deadline: time the item out, leave its worker behind, go on with a new one.
            let restart = batch.state.withLock { s -> Bool in
                guard s.current == item, s.worker == worker, s.outcomes[item] == nil else { return false } // finished meanwhile
                s.outcomes[item] = .timedOut
                s.finished += 1
                abandoned += 1
                worker += 1
                s.worker = worker
                s.next = item + 1
                if abandoned > maxAbandoned {
                    for i in item + 1 ..< count where s.outcomes[i] == nil { s.outcomes[i] = .notRun; s.finished += 1 }
                    return false
                }
                return s.next < count
            }
            if restart { batch.spawn(worker: worker, work) }
        }
        return batch.state.withLock { s in s.outcomes.map { $0 ?? .notRun } }
    }

    /// The shared state of one batch: which worker is the live one, its current item and start time, the
    /// outcomes so far. Abandoned workers see that they are no longer `worker` and stop after their item.
    final class Batch<T: Sendable>: Sendable {
        struct State {
            var outcomes: [Outcome<T>?]
            var finished = 0
            var next = 0
            var current = 0
            var started = ContinuousClock.now
            var worker = 0
        }
        let state: Mutex<State>
        let progress = DispatchSemaphore(value: 0)

        init(count: Int) { state = Mutex(State(outcomes: Array(repeating: nil, count: count))) }

        /// Starts worker `id` on a new thread (not Dispatch's pool: an abandoned item may hold it for long).
        func spawn(worker id: Int, _ work: @escaping @Sendable (Int) -> T) {
            let thread = Thread { [self] in
                while true {
                    let item = state.withLock { s -> Int? in
                        guard s.worker == id, s.next < s.outcomes.count else { return nil }
                        let i = s.next
                        s.next += 1
                        s.current = i
                        s.started = ContinuousClock.now
                        return i
                    }
                    guard let item else { break }
                    let value = work(item)
                    let live = state.withLock { s -> Bool in
                        guard s.worker == id, s.outcomes[item] == nil else { return false }
                        s.outcomes[item] = .done(value)
                        s.finished += 1
                        return true
                    }
                    progress.signal()
                    if !live { break }
                }
            }
            thread.start()
        }
    }
}
