import Dispatch

/// SPO-tree: tree-based segment advantages for long chain-of-thought.
///
/// Paper: Guo et al., "Segment Policy Optimization: Effective Segment-Level Credit Assignment in RL for Large
/// Language Models" (2025, arXiv 2505.23564), SPO-tree; reference AIFrameResearch/SPO @b9fc6a2
/// (`hybrid_inference_strategy.py::_construct_tree`, `tree_episode_generator.py::extract_edges_from_tree`).
///
/// Input encoding: the responses of one group are the root-to-leaf paths of one rollout tree. `step_ends`
/// are the ends of the path's shared segments (tree nodes); two responses of a group share the node of
/// segment j iff their first j step ends agree and their tokens agree up to that end. The tokens after the
/// last step end (possibly none) are the response's own leaf, graded with its `reward`. See `StepTrie`.
///
/// Formula: `V(leaf) = R`, `V(node) = mean_{c ∈ children} V(c)` (a mean of child means, as the paper's code;
/// `node_value = leaf_mean` averages the leaves below instead), `σ(node)` = population std of the children's
/// values; edge advantage `A(c) = V(c) − V(parent)` (`adv_method = rloo`, which despite its name is not
/// leave-one-out) or `(V(c) − V(parent)) / (σ(parent) + ε)` (`grpo`); every token of segment c gets `A(c)`.
/// An edge whose advantage is 0 (`V(c) = V(parent)`) is dropped (advantage 0). With `use_prob_mask` (the
/// SPO trainer's probability mask) tokens with `p_old ≥ prob_threshold` get 0; everything is times the mask.
///
/// Paper vs reference: the reference trains each edge once as its own sample; in the ragged layout a shared
/// segment appears in every response through it, so `shared_segments = once` (default) puts the advantage
/// on one copy only (the lowest response index; the other copies get 0 and should be left out of the loss,
/// see `diagnostics["duplicate_tokens"]`), while `every` gives every copy the advantage. The reference drops
/// an edge iff `A + BoK(V_c) − BoK(V_p) == 0` with `BoK(v) = 1 − (1 − v)^4`; by default FineGrain drops iff
/// `A == 0`, and `reference_compatible = true` applies the reference's test (they differ only for rewards
/// outside [0, 1]).
public enum SPOTree {
    public static let info = MethodInfo(
        name: "spo_tree", kind: .estimator,
        summary: "SPO-tree: segment advantages from node values of a rollout tree (responses = root-to-leaf paths)",
        paper: Citation("Segment Policy Optimization: Effective Segment-Level Credit Assignment in RL for Large Language Models", 2025, arxiv: "2505.23564"),
        formula: "V(leaf)=R, V(n)=mean_children V; A(c)=V(c)-V(p) (rloo) or (V(c)-V(p))/(std_p+eps) (grpo); A[t in seg c]=A(c) * m * [p_old<thr]",
        params: [
            .string("adv_method", "rloo", "edge advantage: V(c)-V(p) (rloo) or divided by the parent's child std (grpo)", choices: ["rloo", "grpo"]),
            .string("node_value", "child_mean", "node value: mean of the children's values (paper code) or mean of the leaves below", choices: ["child_mean", "leaf_mean"]),
            .number("epsilon", 1e-8, "added to the parent's child std in grpo mode"),
            .string("shared_segments", "once", "a shared segment's advantage on one copy (lowest response index) or on every copy", choices: ["once", "every"]),
            .bool("use_prob_mask", true, "zero tokens with p_old >= prob_threshold (SPO trainer's probability mask; needs old_logprobs)"),
            .number("prob_threshold", 0.9, "probability-mask threshold"),
            .bool("drop_zero_advantage_edges", true, "drop (zero) edges with V(c) == V(p) (reference: only_adv_greater_than_zero)"),
            .bool("whiten", false, "apply the SPO trainer's batch-global masked whitening (prob-masked statistics)"),
            .bool("reference_compatible", false, "use the reference's edge-drop test A + BoK(V_c) - BoK(V_p) != 0"),
        ],
        requires: ["reward", "step_ends", "old_logprobs (or logprobs; when use_prob_mask)"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)

    /// Per-node results of one batch (arena copies), for inspection and the conformance adapter.
    public struct Analysis: Sendable {
        public let nodeStart: [Int]      // [G+1] node range of each group (root first)
        public let nodeCount: [Int]      // [G] nodes used per group
        public let segOffsets: [Int]     // [R+1] segments (internal + leaf) of each response
        public let segNode: [Int]        // [R+S] node of each segment
        public let parent: [Int]         // [M] -1 for roots
        public let value: [Double]       // [M] V(node)
        public let childStd: [Double]    // [M] population std of the children's values (NaN without children)
        public let advantage: [Double]   // [M] edge advantage of node from its parent (0 for roots)
        public let passesFilter: [Bool]  // [M] edge survives the zero-advantage drop rule
        public let kept: [Bool]          // [M] passes the filter and its segment is non-empty
        public let isLeaf: [Bool]        // [M]
        public let segmentLength: [Int]  // [M]
    }

    /// `BoK(v) = 1 − (1 − v)^4`, the reference's best-of-4 success probability used in its edge filter.
    public static func bestOfK(_ v: Double, k: Int = 4) -> Double {
        var p = 1.0; for _ in 0 ..< k { p *= (1 - v) }
        return 1 - p
    }

    struct Config {
        let grpo: Bool, leafMean: Bool, epsilon: Double, dropZero: Bool, referenceCompatible: Bool
        init(_ p: Params) throws {
            grpo = try p.string("adv_method") == "grpo"
            leafMean = try p.string("node_value") == "leaf_mean"
            epsilon = try p.double("epsilon")
            dropZero = try p.bool("drop_zero_advantage_edges")
            referenceCompatible = try p.bool("reference_compatible")
        }
    }

    /// Node values, child stds, edge advantages and drop flags for every group (groups in parallel).
    /// Buffers are `[M]`; the caller deallocates.
    static func nodePasses(_ trie: StepTrie, _ batch: RolloutBatch, scores: [Double], _ cfg: Config)
        -> (value: UnsafeMutableBufferPointer<Double>, std: UnsafeMutableBufferPointer<Double>,
            adv: UnsafeMutableBufferPointer<Double>, keep: UnsafeMutableBufferPointer<UInt8>) {
        let m = trie.nodeCapacity
        let value = UnsafeMutableBufferPointer<Double>.allocate(capacity: m)   // [M]
        let sum = UnsafeMutableBufferPointer<Double>.allocate(capacity: m)     // [M] Σ child values (later: std)
        let cnt = UnsafeMutableBufferPointer<Double>.allocate(capacity: m)     // [M] #children
        let adv = UnsafeMutableBufferPointer<Double>.allocate(capacity: m)     // [M]
        let keep = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: m)     // [M]
        let lsum = UnsafeMutableBufferPointer<Double>.allocate(capacity: cfg.leafMean ? m : 0)
        let lcnt = UnsafeMutableBufferPointer<Double>.allocate(capacity: cfg.leafMean ? m : 0)
        let P = (value: SharedMutablePointer(value), sum: SharedMutablePointer(sum), cnt: SharedMutablePointer(cnt),
                 adv: SharedMutablePointer(adv), keep: SharedMutablePointer(keep),
                 lsum: SharedMutablePointer(lsum), lcnt: SharedMutablePointer(lcnt))
        scores.withUnsafeBufferPointer { sp in
            let S = SharedPointer(sp)
            StepTrie.forEachGroup(batch) { g in
                guard let value = P.value.base, let sum = P.sum.base, let cnt = P.cnt.base, let adv = P.adv.base,
                      let keep = P.keep.base, let score = S.base else { return }
                let lo = trie.nodeStart[g], hi = lo &+ Int(trie.used[g])
                for v in lo ..< hi { sum[v] = 0; cnt[v] = 0 }
                if cfg.leafMean, let ls = P.lsum.base, let lc = P.lcnt.base { for v in lo ..< hi { ls[v] = 0; lc[v] = 0 } }
                // Bottom-up: nodes are in pre-order, so a reverse loop sees children before parents.
                var v = hi &- 1
                while v >= lo {
                    if trie.isLeaf[v] != 0 {
                        value[v] = score[Int(trie.owner[v])]
                        if cfg.leafMean, let ls = P.lsum.base, let lc = P.lcnt.base { ls[v] = value[v]; lc[v] = 1 }
                    } else if cfg.leafMean, let ls = P.lsum.base, let lc = P.lcnt.base {
                        value[v] = lc[v] > 0 ? ls[v] / lc[v] : 0
                    } else {
                        value[v] = cnt[v] > 0 ? sum[v] / cnt[v] : 0
                    }
                    if v > lo {
                        let p = Int(trie.parent[v])
                        sum[p] += value[v]; cnt[p] += 1
                        if cfg.leafMean, let ls = P.lsum.base, let lc = P.lcnt.base { ls[p] += ls[v]; lc[p] += lc[v] }
                    }
                    v &-= 1
                }
                // Population std of each node's children around their mean; `sum` becomes the child mean first.
                for u in lo ..< hi { sum[u] = cnt[u] > 0 ? sum[u] / cnt[u] : 0 }
                for u in lo ..< hi { adv[u] = 0 }   // adv doubles as the squared-deviation accumulator
                for u in (lo &+ 1) ..< Swift.max(lo &+ 1, hi) {
                    let p = Int(trie.parent[u]); let d = value[u] - sum[p]; adv[p] += d * d
                }
                for u in lo ..< hi { sum[u] = cnt[u] > 0 ? (adv[u] / cnt[u]).squareRoot() : .nan }
                // Edge advantages and the drop rule.
                adv[lo] = 0; keep[lo] = 0
                for u in (lo &+ 1) ..< Swift.max(lo &+ 1, hi) {
                    let p = Int(trie.parent[u])
                    let diff = value[u] - value[p]
                    let a = cfg.grpo ? diff / (sum[p] + cfg.epsilon) : diff
                    adv[u] = a
                    var k = true
                    if cfg.dropZero {
                        k = cfg.referenceCompatible ? (a + (bestOfK(value[u]) - bestOfK(value[p]))) != 0 : a != 0
                    }
                    keep[u] = k ? 1 : 0
                }
            }
        }
        cnt.deallocate(); lsum.deallocate(); lcnt.deallocate()
        return (value, sum, adv, keep)
    }

    public static func analyze(_ batch: RolloutBatch, params: [String: ParamValue] = [:]) throws -> Analysis {
        try batch.validate()
        let p = try Params.resolve(params, specs: info.params, method: info.name)
        let trie = try StepTrie(batch, leaves: .ownLeaf, method: info.name)
        let (value, std, adv, keep) = nodePasses(trie, batch, scores: try batch.scores(method: info.name), try Config(p))
        defer { value.deallocate(); std.deallocate(); adv.deallocate(); keep.deallocate() }
        let m = trie.nodeCapacity
        return Analysis(nodeStart: trie.nodeStart, nodeCount: (0 ..< batch.groupCount).map { Int(trie.used[$0]) },
                        segOffsets: trie.segOffsets, segNode: trie.segNode.map { Int($0) },
                        parent: (0 ..< m).map { Int(trie.parent[$0]) }, value: Array(value), childStd: Array(std),
                        advantage: Array(adv), passesFilter: keep.map { $0 != 0 },
                        kept: (0 ..< m).map { keep[$0] != 0 && trie.segEnd[$0] > trie.segStart[$0] }, isLeaf: trie.isLeaf.map { $0 != 0 },
                        segmentLength: (0 ..< m).map { Int(trie.segEnd[$0] - trie.segStart[$0]) })
    }

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let method = params.method
        guard batch.stepEnds != nil else { throw FineGrainError.missingField(field: "step_ends", method: method) }
        let cfg = try Config(params)
        let once = try params.string("shared_segments") == "once"
        let useProb = try params.bool("use_prob_mask")
        let pt = ProbThreshold(try params.double("prob_threshold"))
        try params.require("prob_threshold", pt.threshold > 0 && pt.threshold <= 1, "must be in (0, 1]")
        let lp: [Double] = useProb ? try ProbThreshold.oldLogprobs(batch, method: method) : []
        let scores = try batch.scores(method: method)
        let trie = try StepTrie(batch, leaves: .ownLeaf, method: method)
        let (value, std, adv, keep) = nodePasses(trie, batch, scores: scores, cfg)
        defer { value.deallocate(); std.deallocate(); adv.deallocate(); keep.deallocate() }

        var out = [Double](repeating: 0, count: batch.tokenCount)  // [N]
        let gi = batch.groupIndex()
        let duplicates = UnsafeMutableBufferPointer<Int>.allocate(capacity: batch.groupCount)  // [G]
        defer { duplicates.deallocate() }
        let D = SharedMutablePointer(duplicates), A = SharedMutablePointer(adv), K = SharedMutablePointer(keep)
        out.withUnsafeMutableBufferPointer { op in
            let O = SharedMutablePointer(op)
            batch.mask.withUnsafeBufferPointer { mp in lp.withUnsafeBufferPointer { lpp in
                let M = SharedPointer(mp), L = SharedPointer(lpp)
                StepTrie.forEachGroup(batch) { g in
                    guard let o = O.base, let m = M.base, let a = A.base, let keep = K.base, let dup = D.base else { return }
                    var dupCount = 0
                    for j in gi.start[g] ..< gi.start[g + 1] {
                        let r = gi.members[j], base = batch.offsets[r]
                        for s in trie.segOffsets[r] ..< trie.segOffsets[r + 1] {
                            let v = Int(trie.segNode[s])
                            let lo = base &+ Int(trie.segStart[v]), hi = base &+ Int(trie.segEnd[v])
                            if once && Int(trie.owner[v]) != r { dupCount &+= hi &- lo; continue }
                            let x = keep[v] != 0 ? a[v] : 0
                            if x == 0 { continue }
                            if useProb, let l = L.base {
                                for t in lo ..< hi { o[t] = m[t] != 0 && pt.below(l[t]) ? x : 0 }
                            } else {
                                for t in lo ..< hi { o[t] = m[t] != 0 ? x : 0 }
                            }
                        }
                    }
                    dup[g] = dupCount
                }
            } }
        }
        if try params.bool("whiten") {
            out = try SPOWhiten.maskedWhiten(out, mask: batch.mask, oldLogprobs: useProb ? lp : nil,
                                             threshold: pt.threshold, method: method)
            for i in 0 ..< out.count where batch.mask[i] == 0 || (useProb && !pt.below(lp[i])) { out[i] = 0 }
        }
        var nodes = 0, dropped = 0
        for g in 0 ..< batch.groupCount {
            let lo = trie.nodeStart[g]; nodes += Int(trie.used[g])
            for v in (lo + 1) ..< Swift.max(lo + 1, lo + Int(trie.used[g])) where keep[v] == 0 { dropped += 1 }
        }
        return AdvantageOutput(advantages: out, returns: nil,
                               diagnostics: ["nodes": Double(nodes), "dropped_edges": Double(dropped),
                                             "duplicate_tokens": Double(duplicates.reduce(0, +))])
    }
}
