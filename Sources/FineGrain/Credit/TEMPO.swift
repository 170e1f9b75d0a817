import Dispatch

// TEMPO / Prefix-to-Tree (P2T): GRPO plus a branch-gated temporal-difference correction computed on the
// prefix tree of a group's responses. Spec: credit_assignment.md §2.
//
// The trick (paper, "Prefix-to-Tree"): the responses of one prompt share prefixes, so they form a tree. The
// value of a prefix node s is the mean outcome of the responses through it, V(s) = S(s)/N(s). A token that
// moves from node s_t to s_{t+1} gets the TD correction V(s_{t+1}) - V(s_t); it is zero unless s_t is a
// branch point, so TEMPO equals GRPO everywhere except at the tokens right after a branch.
//
// Tree construction without a node per token (and without a dictionary per node): sort the group's
// responses lexicographically by token ids; the responses sharing the first d tokens of response p are a
// contiguous run of the sorted order around p, namely those j with min(lcp on the path p..j) >= d, where
// lcp[k] is the longest common prefix of sorted neighbours k and k+1. So a response's walk down the tree
// is a run [a, b] that shrinks from its ends: at depth t it drops the outer members whose path-min equals t,
// and that token t is a branch token. Cost per group: the sort (O(n log n) comparisons of O(LCP) each),
// n-1 neighbour LCPs, O(n) per response for the walk, and one fill pass over the tokens.

/// TEMPO advantages ("Exploiting Tree Structure for Credit Assignment in RL Training of LLMs", Tran, Yao,
/// Yu, 2025, arXiv 2509.18314). Reference implementation: fatebreaker/tempo `compute_tempo_outcome_advantage`.
///
/// Formula, per group with mean `mu` and unbiased std `sigma` of the scores `R`:
/// `A[i,t] = (R_i - mu + td_weight * (V(y_<=t) - V(y_<t))) / (sigma + epsilon)` (without the division if
/// `norm_adv_by_std_in_grpo` is false), where `V(prefix)` is the mean score of the group's responses that
/// start with that prefix (`V(empty) = mu`); `A = 0` at mask-0 tokens; `returns == advantages`.
///
/// Paper defaults and reference-compatibility options (spec §2(d), golden/README.md "TEMPO"):
/// * `singleton_policy = "grpo"` (default): a group of one uses GRPO's mean 0 / std 1, `A = R/(1+epsilon)`;
///   `"zero"` gives 0; `"reference"` reproduces the reference, whose `torch.std` of one score is NaN: every
///   position of the row is NaN (0 without std normalisation) unless its first token is mask-0.
/// * `stop_at_first_hole = false` (default): TD corrections at every mask-1 token, through the holes of
///   multi-turn masks (the tree is built on the full token sequence); `true` reproduces the reference, which
///   stops at the first mask-0 token and leaves every later token at the GRPO value.
/// * The reference compares padded rows column by column; a ragged batch simply ends each response at its
///   last token. To reproduce the reference's padding behaviour, pass full-width rows with their pad ids
///   (the conformance adapter does).
/// * `td_weight` (lambda_TD) is ours; the reference's TD weight is 1 (its `lam` argument is unused).
public enum TEMPO {
    public static let info = MethodInfo(
        name: "tempo", kind: .estimator,
        summary: "GRPO plus branch-gated TD corrections on the group's prefix tree (Prefix-to-Tree values)",
        paper: Citation("Exploiting Tree Structure for Credit Assignment in RL Training of LLMs", 2025, arxiv: "2509.18314"),
        formula: "A[i,t] = (R_i - mu_g + td_weight*(V(y_<=t) - V(y_<t))) / (std_g + epsilon), V(prefix) = mean R over the group's responses with that prefix; A = 0 where m = 0",
        params: [
            .bool("norm_adv_by_std_in_grpo", true, "divide by the group std (false: Dr. GRPO style)"),
            .number("epsilon", 1e-6, "added to the group std"),
            .number("td_weight", 1.0, "weight lambda_TD of the TD correction (reference: 1)"),
            .string("singleton_policy", "grpo", "group of one: grpo = R/(1+epsilon); zero; reference = NaN as torch.std of one",
                    choices: ["grpo", "zero", "reference"]),
            .bool("stop_at_first_hole", false, "reference compatibility: no TD after a response's first mask-0 token"),
        ],
        requires: ["tokens", "reward"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)
    public static let estimators: [AdvantageEstimator] = [estimator]

    struct Config: Sendable {
        let norm: Bool, epsilon: Double, tdWeight: Double, singleton: String, stopAtHole: Bool
    }

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let cfg = Config(norm: try params.bool("norm_adv_by_std_in_grpo"), epsilon: try params.double("epsilon"),
                         tdWeight: try params.double("td_weight"), singleton: try params.string("singleton_policy"),
                         stopAtHole: try params.bool("stop_at_first_hole"))
        try params.require("epsilon", cfg.epsilon.isFinite && cfg.epsilon >= 0, "must be finite and >= 0")
        try params.require("td_weight", cfg.tdWeight.isFinite, "must be finite")
        let scores = try batch.scores(method: params.method)                  // [R]
        let gi = batch.groupIndex()
        let (mean, std) = CreditKernels.groupMeanStd(scores, gi)                // [G], singleton: 0 / 1
        let maxGroup = (0 ..< batch.groupCount).reduce(0) { Swift.max($0, gi.size($1)) }
        var out = [Double](repeating: 0, count: batch.tokenCount)              // [N]
        let groups = batch.groupCount, chunks = batch.tokenCount > CreditKernels.parallelTokenThreshold ? Swift.min(groups, 64) : 1
        batch.tokens.withUnsafeBufferPointer { tp in batch.mask.withUnsafeBufferPointer { mp in
        batch.offsets.withUnsafeBufferPointer { op in scores.withUnsafeBufferPointer { sp in
        gi.start.withUnsafeBufferPointer { gs in gi.members.withUnsafeBufferPointer { gm in
        mean.withUnsafeBufferPointer { mu in std.withUnsafeBufferPointer { sd in out.withUnsafeMutableBufferPointer { ob in
            let ctx = Context(tokens: SharedPointer(tp), mask: SharedPointer(mp), offsets: SharedPointer(op),
                              scores: SharedPointer(sp), start: SharedPointer(gs), members: SharedPointer(gm),
                              mean: SharedPointer(mu), std: SharedPointer(sd), out: SharedMutablePointer(ob), cfg: cfg)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                // O(max group) scratch per worker: sorted order, neighbour LCPs, prefix sums, path minima.
                var scratch = Scratch(capacity: maxGroup)
                for g in (groups &* c) / chunks ..< (groups &* (c &+ 1)) / chunks { ctx.group(g, &scratch) }
            }
        } } } } } } } } }
        return AdvantageOutput(advantages: out, returns: out, diagnostics: ["max_group_size": Double(maxGroup)])
    }

    struct Scratch {
        var order: [Int], lcp: [Int], prefix: [Double], pathMin: [Int]
        init(capacity n: Int) {
            order = [Int](repeating: 0, count: n); lcp = order; pathMin = order
            prefix = [Double](repeating: 0, count: n + 1)
        }
    }

    /// Raw views of the batch shared by the workers; each worker writes only its groups' rows.
    struct Context: @unchecked Sendable {
        let tokens: SharedPointer<Int32>, mask: SharedPointer<UInt8>, offsets: SharedPointer<Int>
        let scores: SharedPointer<Double>, start: SharedPointer<Int>, members: SharedPointer<Int>
        let mean: SharedPointer<Double>, std: SharedPointer<Double>, out: SharedMutablePointer<Double>
        let cfg: Config
        /// Runs up to this size get their value by direct summation (O(run) per branch token).
        static let directSumLimit = 64

        /// Longest common prefix of responses x and y (8 tokens per step, then one at a time).
        @inline(__always) func lcp(_ x: Int, _ y: Int) -> Int {
            let off = offsets.base!, tok = tokens.base!
            let px = tok + off[x], py = tok + off[y]
            let m = Swift.min(off[x &+ 1] &- off[x], off[y &+ 1] &- off[y])
            var i = 0
            while i &+ 8 <= m {
                let a = UnsafeRawPointer(px + i).loadUnaligned(as: SIMD8<Int32>.self)
                let b = UnsafeRawPointer(py + i).loadUnaligned(as: SIMD8<Int32>.self)
                if a != b { break }
                i &+= 8
            }
            while i < m && px[i] == py[i] { i &+= 1 }
            return i
        }

        /// Lexicographic order of token sequences (a proper prefix sorts first).
        @inline(__always) func less(_ x: Int, _ y: Int) -> Bool {
            let off = offsets.base!, tok = tokens.base!
            let k = lcp(x, y)
            let lx = off[x &+ 1] &- off[x], ly = off[y &+ 1] &- off[y]
            if k < lx && k < ly { return tok[off[x] &+ k] < tok[off[y] &+ k] }
            return lx < ly
        }

        func group(_ g: Int, _ s: inout Scratch) {
            let start = self.start.base!, members = self.members.base!, off = offsets.base!
            let m = mask.base!, o = out.base!, R = scores.base!
            let lo = start[g], n = start[g &+ 1] &- lo
            guard n > 0 else { return }
            let mu = mean.base![g], denom = cfg.norm ? std.base![g] + cfg.epsilon : 1.0
            if n == 1 { singleton(members[lo], mu: mu, denom: denom); return }
            s.order.withUnsafeMutableBufferPointer { ord in
            s.lcp.withUnsafeMutableBufferPointer { lcp in
            s.prefix.withUnsafeMutableBufferPointer { pre in
            s.pathMin.withUnsafeMutableBufferPointer { pm in
                for k in 0 ..< n { ord[k] = members[lo &+ k] }
                var run = UnsafeMutableBufferPointer(rebasing: ord[0 ..< n])
                run.sort { less($0, $1) }                                                 // prefix-tree order
                pre[0] = 0
                for k in 0 ..< n { pre[k &+ 1] = pre[k] + R[ord[k]] }                     // [n+1] score prefix sums
                for k in 0 ..< n &- 1 { lcp[k] = self.lcp(ord[k], ord[k &+ 1]) }          // [n-1]
                for p in 0 ..< n {
                    let r = ord[p], base = off[r], len = off[r &+ 1] &- base
                    let grpo = (R[r] - mu) / denom
                    for t in 0 ..< len { o[base &+ t] = m[base &+ t] != 0 ? grpo : 0 }  // GRPO value everywhere
                    var limit = len                                                       // TD only below limit
                    if cfg.stopAtHole { var t = 0; while t < len && m[base &+ t] != 0 { t &+= 1 }; limit = t }
                    // Path minima of the neighbour LCPs from p outwards: member j shares the first pm[j]
                    // tokens of response r; pm never increases going away from p.
                    var cur = len
                    var k = p
                    while k > 0 { k &-= 1; cur = Swift.min(cur, lcp[k]); pm[k] = cur }
                    cur = len; k = p
                    while k < n &- 1 { cur = Swift.min(cur, lcp[k]); k &+= 1; pm[k] = cur }
                    pm[p] = len
                    // Walk down the tree: the run [a, b] holds the responses through the current node.
                    var a = 0, b = n &- 1
                    // V of the run [a, b]: a direct sum for small runs (exact 0 TD when the scores are
                    // equal, as the reference), O(1) prefix sums for large ones.
                    @inline(__always) func value(_ a: Int, _ b: Int) -> Double {
                        guard b &- a < Context.directSumLimit else { return (pre[b &+ 1] - pre[a]) / Double(b &- a &+ 1) }
                        var acc = 0.0
                        for k in a ... b { acc += R[ord[k]] }
                        return acc / Double(b &- a &+ 1)
                    }
                    var vBefore = value(0, n &- 1)                                        // V(root) = mu
                    while a < p || b > p {
                        let t = Swift.min(a < p ? pm[a] : len, b > p ? pm[b] : len)       // next branch token
                        if t >= limit { break }
                        while a < p && pm[a] == t { a &+= 1 }
                        while b > p && pm[b] == t { b &-= 1 }
                        let vAfter = value(a, b)
                        if m[base &+ t] != 0 {                                            // branch-gated TD term
                            o[base &+ t] = (R[r] - mu + cfg.tdWeight * (vAfter - vBefore)) / denom
                        }
                        vBefore = vAfter
                    }
                }
            } } } }
        }

        /// A group of one response (spec §2(d)).
        func singleton(_ r: Int, mu: Double, denom: Double) {
            let off = offsets.base!, m = mask.base!, o = out.base!
            let base = off[r], len = off[r &+ 1] &- base
            switch cfg.singleton {
            case "zero":
                return
            case "reference" where len > 0 && m[base] != 0:
                let v = cfg.norm ? Double.nan : 0                 // torch.std of one element is NaN
                for t in 0 ..< len { o[base &+ t] = v }
            default:                                              // "grpo", and reference rows whose walk never starts
                let v = (scores.base![r] - mu) / denom
                for t in 0 ..< len { o[base &+ t] = m[base &+ t] != 0 ? v : 0 }
            }
        }
    }
}
