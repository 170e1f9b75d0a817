import Foundation

/// verl's loss aggregation modes (`agg_loss`, `verl.trainer.ppo.core_algos`).
///
/// * `token-mean`: every valid token weighs the same (PPO, "Proximal Policy Optimization Algorithms", 2017;
///   DAPO's token-level loss, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale", 2025).
/// * `token-sum`: plain masked sum.
/// * `seq-mean-token-sum`, `seq-mean-token-mean`: every response weighs the same (GRPO style).
/// * `seq-mean-token-sum-norm`: Dr. GRPO's constant normaliser ("Understanding R1-Zero-Like Training: A
///   Critical Perspective", 2025).
public enum LossAggMode: String, Sendable, CaseIterable {
    case tokenMean = "token-mean"
    case tokenSum = "token-sum"
    case seqMeanTokenSum = "seq-mean-token-sum"
    case seqMeanTokenMean = "seq-mean-token-mean"
    case seqMeanTokenSumNorm = "seq-mean-token-sum-norm"

    public static var names: [String] { allCases.map(\.rawValue) }
}

/// Aggregation of a per-token loss matrix into a scalar, verl `agg_loss` semantics (verl 0.9.1), plus the
/// per-token weights `d agg / d loss_t` every loss uses for its gradient.
///
/// With `N` = valid (mask-1) tokens of the batch, `n_i` the valid tokens of response `i`, `G` = responses with
/// `n_i > 0`, `S_i = Σ_t m·ℓ`, `dp` = `dp_size`:
///
/// | mode | value | `∂/∂ℓ_t` (valid t of row i) |
/// |---|---|---|
/// | `token-mean` | `Σ_i S_i / (batch_num_tokens ?? N) · dp` | `dp / N'` |
/// | `token-sum` | `Σ_i S_i · dp` | `dp` |
/// | `seq-mean-token-sum` | `Σ_{n_i>0} S_i / (global_batch_size ?? G) · dp` | `dp / G'` |
/// | `seq-mean-token-mean` | `Σ_{n_i>0} S_i/(n_i + 1e-8) / (global_batch_size ?? G) · dp` | `dp / (G' (n_i + 1e-8))` |
/// | `seq-mean-token-sum-norm` | `seq-mean-token-sum / C` | `dp / (G' C)` |
///
/// `C` = `loss_scale_factor`; verl's default is the padded width `T` (`loss_mask.shape[-1]`). FineGrain's
/// layout is ragged, so the default here is **the longest response of the batch** (`max_i len_i`, counting
/// mask-0 positions inside a response) — equal to verl's `T` whenever the batch came from a padded tensor
/// without trimming (as in the conformance adapters) or the longest response fills the padded width. Pass
/// `loss_scale_factor` explicitly (a constant, e.g. the max generation length) for run-to-run consistency.
///
/// NaN semantics (exactly verl's): an all-masked batch gives NaN (`0/0`) in every mode but `token-sum` (0).
/// `token-*` modes ignore any value at a masked position (even NaN); `seq-mean-*` modes compute `Σ_t ℓ·m`,
/// so a NaN/inf at a masked position of a response with valid tokens makes the result NaN
/// (`aggregate(_:)`). The fused losses skip masked positions in every mode (identical whenever the loss is
/// finite there, which holds for finite inputs).
///
/// Errors: `dp_size > 1` without `batch_num_tokens` (token-mean) or `global_batch_size` (seq-mean modes),
/// `dp_size < 1`, non-positive counts or scale factor, unknown mode.
public struct Aggregation: Sendable {
    public var mode: LossAggMode
    public var dpSize: Int
    public var batchNumTokens: Double?
    public var globalBatchSize: Double?
    public var lossScaleFactor: Double?

    public init(mode: LossAggMode, dpSize: Int = 1, batchNumTokens: Double? = nil, globalBatchSize: Double? = nil,
                lossScaleFactor: Double? = nil) {
        self.mode = mode; self.dpSize = dpSize; self.batchNumTokens = batchNumTokens
        self.globalBatchSize = globalBatchSize; self.lossScaleFactor = lossScaleFactor
    }

    /// Parameter specs every aggregating loss declares (verl config names).
    public static func specs(defaultMode: LossAggMode) -> [ParamSpec] {
        [
            .string("loss_agg_mode", defaultMode.rawValue, "loss aggregation: " + LossAggMode.names.joined(separator: ", "),
                    choices: LossAggMode.names),
            .integer("dp_size", 1, "data-parallel size the loss is scaled by (needs the global counts when > 1)"),
            .number("batch_num_tokens", nil, "global number of valid tokens (token-mean denominator); default: this batch's"),
            .number("global_batch_size", nil, "global number of responses (seq-mean denominator); default: this batch's non-empty responses"),
            .number("loss_scale_factor", nil, "seq-mean-token-sum-norm constant C; default: the longest response of the batch (verl: padded width)"),
        ]
    }

    /// Reads and checks the aggregation parameters. `forcedMode` overrides `loss_agg_mode` (GSPO, SAPO).
    public static func from(_ p: Params, forcedMode: LossAggMode? = nil) throws -> Aggregation {
        let name = p.optionalString("loss_agg_mode") ?? LossAggMode.tokenMean.rawValue
        guard let parsed = LossAggMode(rawValue: name) else {
            throw FineGrainError.invalidParameter(name: "loss_agg_mode", method: p.method,
                reason: "invalid loss_agg_mode '\(name)' (accepted: \(LossAggMode.names.joined(separator: ", ")))")
        }
        let a = Aggregation(mode: forcedMode ?? parsed, dpSize: p.optionalInt("dp_size") ?? 1,
                            batchNumTokens: p.optionalDouble("batch_num_tokens"),
                            globalBatchSize: p.optionalDouble("global_batch_size"),
                            lossScaleFactor: p.optionalDouble("loss_scale_factor"))
        try a.validate(method: p.method)
        return a
    }

    public func validate(method: String) throws {
        func bad(_ n: String, _ r: String) -> FineGrainError { .invalidParameter(name: n, method: method, reason: r) }
        guard dpSize >= 1 else { throw bad("dp_size", "must be >= 1, got \(dpSize)") }
        if let b = batchNumTokens, !(b > 0 && b.isFinite) { throw bad("batch_num_tokens", "must be a positive count, got \(b)") }
        if let g = globalBatchSize, !(g > 0 && g.isFinite) { throw bad("global_batch_size", "must be a positive count, got \(g)") }
        if let c = lossScaleFactor, !(c > 0 && c.isFinite) { throw bad("loss_scale_factor", "must be positive, got \(c)") }
        if dpSize > 1 {
            switch mode {
            case .tokenMean where batchNumTokens == nil:
                throw bad("batch_num_tokens", "(global) batch_num_tokens is required when dp_size > 1")
            case .seqMeanTokenSum, .seqMeanTokenMean, .seqMeanTokenSumNorm:
                if globalBatchSize == nil { throw bad("global_batch_size", "global_batch_size is required when dp_size > 1") }
            default: break
            }
        }
    }

    /// Weights of one batch layout: `value = scale · Σ_i rowFactor[i] · S_i` and
    /// `∂value/∂ℓ_t = rowWeight[i]` for valid t of row i (0 at masked positions).
    public struct Weights: Sendable {
        public var scale: Double
        public var rowFactor: [Double]
        public var rowWeight: [Double]
        /// Valid tokens of the batch (the `masked_mean` denominator of the metrics, before `+ 1e-8`).
        public var validTokens: Int
        public var rowCounts: [Int]
    }

    /// Computes the aggregation weights for a ragged layout (one cheap pass over the mask).
    public func weights(offsets: [Int], mask: [UInt8]) -> Weights {
        let r = offsets.count - 1
        var counts = [Int](repeating: 0, count: r)
        var total = 0, nonEmpty = 0, maxLen = 0
        mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< r {
                let lo = offsets[i], hi = offsets[i + 1]
                var c = 0
                for t in lo ..< hi { c &+= Int(mp[t]) }
                counts[i] = c; total &+= c
                if c > 0 { nonEmpty &+= 1 }
                maxLen = Swift.max(maxLen, hi - lo)
            }
        }
        let dp = Double(dpSize)
        var factor = [Double](repeating: 1, count: r)
        let scale: Double
        switch mode {
        case .tokenMean:
            scale = dp / (batchNumTokens ?? Double(total))
        case .tokenSum:
            scale = dp
        case .seqMeanTokenSum, .seqMeanTokenSumNorm:
            let c = mode == .seqMeanTokenSumNorm ? (lossScaleFactor ?? Double(maxLen)) : 1
            scale = dp / (globalBatchSize ?? Double(nonEmpty)) / c
            for i in 0 ..< r where counts[i] == 0 { factor[i] = 0 }
        case .seqMeanTokenMean:
            scale = dp / (globalBatchSize ?? Double(nonEmpty))
            for i in 0 ..< r { factor[i] = counts[i] == 0 ? 0 : 1 / (Double(counts[i]) + MaskedStats.meanEpsilon) }
        }
        let w = factor.map { $0 * scale }
        return Weights(scale: scale, rowFactor: factor, rowWeight: w, validTokens: total, rowCounts: counts)
    }

    /// verl `agg_loss` of a ragged per-token loss column, with verl's exact NaN semantics.
    public func aggregate(_ loss: [Double], offsets: [Int], mask: [UInt8], method: String = "agg_loss") throws -> Double {
        try validate(method: method)
        guard loss.count == mask.count, offsets.last == mask.count else {
            throw FineGrainError.invalidField(field: "loss_mat", reason: "has \(loss.count) entries but the mask has \(mask.count)")
        }
        let w = weights(offsets: offsets, mask: mask)
        var acc = 0.0
        loss.withUnsafeBufferPointer { lp in mask.withUnsafeBufferPointer { mp in
            for i in 0 ..< offsets.count - 1 {
                var s = 0.0
                switch mode {
                case .tokenMean, .tokenSum:
                    for t in offsets[i] ..< offsets[i + 1] where mp[t] != 0 { s += lp[t] }
                    acc += s
                default:
                    if w.rowFactor[i] == 0 { continue }   // fully masked rows are excluded (masked_sum over rows)
                    for t in offsets[i] ..< offsets[i + 1] { s += lp[t] * Double(mp[t]) }
                    acc += mode == .seqMeanTokenMean ? s / (Double(w.rowCounts[i]) + MaskedStats.meanEpsilon) : s
                }
            }
        } }
        return acc * w.scale
    }

    /// Aggregated value and its gradient `∂value/∂x_t = w_t · dx[t]` for a per-token term `x` whose elementwise
    /// derivative is `dx` (nil: the gradient w.r.t. `x` itself). Masked positions get gradient 0.
    public func valueAndGradient(_ x: [Double], derivative dx: [Double]?, offsets: [Int], mask: [UInt8]) -> (Double, [Double]) {
        let w = weights(offsets: offsets, mask: mask)
        var g = [Double](repeating: 0, count: x.count)
        var acc = 0.0
        x.withUnsafeBufferPointer { xp in mask.withUnsafeBufferPointer { mp in g.withUnsafeMutableBufferPointer { gp in
            for i in 0 ..< offsets.count - 1 {
                let f = w.rowFactor[i], rw = w.rowWeight[i]
                var s = 0.0
                for t in offsets[i] ..< offsets[i + 1] where mp[t] != 0 {
                    s += xp[t]
                    gp[t] = rw * (dx?[t] ?? 1)
                }
                acc += f * s
            }
        } } }
        return (acc * w.scale, g)
    }
}

/// Running sums of one fused loss pass: `S` weighted by row factors, and metric counters.
@usableFromInline
struct LossAccumulator {
    @usableFromInline var value = 0.0
    @usableFromInline var m0 = 0.0, m1 = 0.0, m2 = 0.0
    @usableFromInline init() {}
    @inlinable mutating func add(_ o: LossAccumulator) { value += o.value; m0 += o.m0; m1 += o.m1; m2 += o.m2 }
}

/// Shared plumbing of the elementwise policy losses: validation, aggregation weights, a fused per-row pass
/// (parallel over row chunks for large batches), metrics as `masked_mean`.
enum LossKernel {
    /// Batches above this many tokens are split over cores by rows.
    static let parallelThreshold = 1 << 16

    static func checkLayout(_ input: LossInput, method: String) throws {
        guard let last = input.offsets.last, input.offsets.first == 0, input.offsets.count >= 2 else {
            throw FineGrainError.invalidField(field: "offsets", reason: "need [R+1] offsets starting at 0 with R >= 1")
        }
        guard input.mask.count == last else {
            throw FineGrainError.invalidField(field: "mask", reason: "has \(input.mask.count) entries but the offsets describe \(last) tokens")
        }
        for i in 1 ..< input.offsets.count where input.offsets[i] < input.offsets[i - 1] {
            throw FineGrainError.invalidField(field: "offsets", reason: "decrease at response \(i - 1)")
        }
    }

    /// Masked mean with verl's `+ 1e-8`.
    @inline(__always) static func mean(_ count: Double, _ n: Int) -> Double { count / (Double(n) + MaskedStats.meanEpsilon) }

    /// Runs `body(rowRange, rowIndexRange)` over row chunks; each returns an accumulator (row-factor-weighted
    /// loss sum + metric counters). Chunks run concurrently for large batches; results are summed in chunk order.
    static func run(offsets: [Int], tokenCount: Int, _ body: (Range<Int>) -> LossAccumulator) -> LossAccumulator {
        let rows = offsets.count - 1
        let cores = ProcessInfo.processInfo.activeProcessorCount
        guard tokenCount > parallelThreshold, rows > 1, cores > 1 else { return body(0 ..< rows) }
        let chunks = Swift.min(rows, cores * 4)
        // Split rows so every chunk holds about the same number of tokens.
        var bounds = [0]
        var r = 0
        for c in 1 ..< chunks {
            let target = tokenCount * c / chunks
            while r < rows && offsets[r] < target { r += 1 }
            if r > bounds[bounds.count - 1] { bounds.append(r) }
        }
        bounds.append(rows)
        let bs = bounds
        let n = bs.count - 1
        var parts = [LossAccumulator](repeating: LossAccumulator(), count: n)
        parts.withUnsafeMutableBufferPointer { pp in
            let base = pp.baseAddress!
            parallelFor(n) { k in base[k] = body(bs[k] ..< bs[k + 1]) }
        }
        var acc = LossAccumulator()
        for p in parts { acc.add(p) }
        return acc
    }
}

/// Lets a non-Sendable value cross into `concurrentPerform`; callers guarantee disjoint writes.
struct UncheckedSendable<T>: @unchecked Sendable { let value: T }

/// `DispatchQueue.concurrentPerform` over `n` iterations with a plain (non-Sendable) body. Every iteration
/// must touch disjoint memory.
@inline(__always) func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { esc in
        let box = UncheckedSendable(value: esc)
        DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
    }
}
