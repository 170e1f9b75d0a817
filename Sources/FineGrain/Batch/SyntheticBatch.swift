import RealModule

/// SplitMix64 (Steele, Lea & Flood, "Fast Splittable Pseudorandom Number Generators", 2014): a small, fast,
/// seedable generator, so benchmarks, tests, random choices inside methods (Clip-Cov) and the trainer
/// reproduce on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    /// Standard normal (Box-Muller; one value per call, the second is dropped for simplicity).
    public mutating func normal() -> Double {
        let u1 = Swift.max(uniform(), 1e-300), u2 = uniform()
        return (-2 * Double.log(u1)).squareRoot() * Double.cos(2 * Double.pi * u2)
    }
}

/// Synthetic batches for benchmarks and property tests.
public enum SyntheticBatch {
    /// The verl-style benchmark batch: `responses` responses with lengths uniform in `1...maxLength`,
    /// `group` consecutive responses per group, a Bernoulli(0.5) outcome placed (as verl does) on the last
    /// token of `token_rewards`, values ~ N(0,1), old log-probs `-|N(0,1)|`, current log-probs
    /// `old + 0.05 N(0,1)`, reference log-probs `old + 0.1 N(0,1)`, and advantages ~ N(0,1) in the
    /// `advantages` extra column. All tokens are policy tokens (mask 1).
    public static func verlBenchmark(responses: Int = 512, maxLength: Int = 4096, group: Int = 8, seed: UInt64 = 0) -> RolloutBatch {
        var rng = SplitMix64(seed: seed)
        let lengths = (0 ..< responses).map { _ in 1 + Int(rng.next() % UInt64(maxLength)) }
        let groups = (0 ..< responses).map { GroupID.int($0 / Swift.max(1, group)) }
        var b = RolloutBatch(groups: groups, lengths: lengths)
        let n = b.tokenCount
        var tokenReward = [Double](repeating: 0, count: n)
        for r in 0 ..< responses where rng.uniform() < 0.5 { tokenReward[b.offsets[r + 1] - 1] = 1 }
        b.tokenReward = tokenReward
        var values = [Double](repeating: 0, count: n), old = values, cur = values, ref = values, adv = values
        for i in 0 ..< n {
            values[i] = rng.normal()
            old[i] = -abs(rng.normal())
            cur[i] = old[i] + 0.05 * rng.normal()
            ref[i] = old[i] + 0.1 * rng.normal()
            adv[i] = rng.normal()
        }
        for i in 0 ..< n { b.tokens[i] = Int32(truncatingIfNeeded: rng.next() % 32000) }
        b.value = values; b.oldLogprob = old; b.logprob = cur; b.refLogprob = ref
        b.extraTokenColumns["advantages"] = adv
        return b
    }
}
