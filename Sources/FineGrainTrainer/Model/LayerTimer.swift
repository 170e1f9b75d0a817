import Dispatch
import FineGrain

/// Optional per-layer wall-clock accounting for `GPT.forward` / `backward` (`bench --model --layers`).
/// `GPT.timer` is nil by default; the model then pays one nil check per layer call.
public final class LayerTimer {
    /// Accumulated seconds per section name, in first-seen order.
    public private(set) var names: [String] = []
    public private(set) var seconds: [String: Double] = [:]
    var last: UInt64 = 0

    public init() {}

    /// Starts (or restarts) the clock without charging anything.
    public func start() { last = DispatchTime.now().uptimeNanoseconds }

    /// Charges the time since the previous `start`/`lap` to `name`.
    public func lap(_ name: String) {
        let t = DispatchTime.now().uptimeNanoseconds
        if seconds[name] == nil { names.append(name) }
        seconds[name, default: 0] += Double(t &- last) * 1e-9
        last = t
    }

    public func reset() { names = []; seconds = [:] }
}

extension ModelBenchmark {
    /// Where one forward + log-probs + backward step spends its time: per section (`f.*` forward, `b.*`
    /// backward, summed over layers; timed on shard 0's thread, `*.join` is the wait for the other
    /// shards) the fewest milliseconds over `repeats` steps, in call order, plus the fastest step's total.
    /// On a shared machine the per-section minima are the steadier picture.
    public static func layerProfile(config: GPTConfig, batch: Int, length: Int, repeats: Int = 10) throws -> (sections: [(name: String, ms: Double)], totalMs: Double) {
        let model = try GPT(config: config, seed: 1)
        var rng = SplitMix64(seed: 2)
        let n = batch * length
        let tokens = (0 ..< n).map { _ in Int32(truncatingIfNeeded: rng.next() % UInt64(config.vocabSize)) }
        let targets = GPT.nextTokenTargets(tokens: tokens, batch: batch, length: length)
        let g = [Float](repeating: 1 / Float(n), count: n)
        let timer = LayerTimer()
        model.timer = timer
        var names: [String] = [], best: [String: Double] = [:], total = Double.infinity
        for r in 0 ... Swift.max(1, repeats) {
            timer.reset()
            let t0 = now()
            timer.start()
            _ = try model.logprobs(tokens: tokens, targets: targets, batch: batch, length: length)
            try model.backward(targets: targets, dLogprob: g)
            let dt = (now() - t0) * 1e3
            if r == 0 { names = timer.names; continue }
            total = Swift.min(total, dt)
            for name in timer.names { best[name] = Swift.min(best[name] ?? .infinity, timer.seconds[name]! * 1e3) }
        }
        return (names.map { ($0, best[$0] ?? 0) }, total)
    }
}
