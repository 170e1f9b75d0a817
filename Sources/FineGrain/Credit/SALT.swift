import Foundation

/// SALT: step-level advantages from a graph of a group's trajectories, from outcome rewards only.
///
/// Paper: Li et al., "SALT: Step-level Advantage Assignment for Long-horizon Agents via Trajectory Graph"
/// (2025, arXiv 2510.20022; Findings of EACL 2026). No reference code exists: this is the spec's
/// reconstruction (credit_assignment.md §4, [recon]), and every open choice is a parameter.
///
/// Inputs: `reward` (outcome R_i), `step_ends` (steps = turns; they must cover every token), `mask`
/// (non-action tokens 0). Steps are identified by content: `merge_key = prefix` (default) makes node(i,k) the
/// full step history `y_0 .. y_{e_k}` (a prefix tree of steps, `StepTrie`); `state_action` makes it the
/// step's own tokens (observation and action), merging identical steps reached through different
/// histories (a DAG; a trajectory that revisits a node counts once).
///
/// Formula: base advantages `a_i` (GRPO `(R_i − μ)/(σ + ε)`, unbiased σ, singleton mean 0 / std 1; or RLOO
/// `R_i − mean_{j≠i} R_j`, singleton 0); `mode = mean_trajectory_advantage`: `Â(v) = mean_{i ∈ T(v)} a_i`
/// over the trajectories T(v) through v — a step shared by the whole group gets 0 ("neutral"), a step
/// unique to one trajectory keeps `a_i` ("decisive"); `mode = value_difference` (prefix only):
/// `V(v) = mean_{i ∈ T(v)} R_i`, `V(root) = μ`, `Â(v) = (V(v) − V(parent))/(σ + ε)` (TEMPO at step
/// granularity; telescopes to the GRPO advantage). Every token of step k of trajectory i gets
/// `Â(node(i,k)) · m`. No decisive-step re-weighting is applied (the paper's summaries do not specify one).
public enum SALT {
    public static let info = MethodInfo(
        name: "salt", kind: .estimator,
        summary: "SALT [recon]: step advantages = mean base advantage of the trajectories through the step node",
        paper: Citation("SALT: Step-level Advantage Assignment for Long-horizon Agents via Trajectory Graph", 2025, arxiv: "2510.20022"),
        formula: "a_i = GRPO/RLOO(R); A(v) = mean_{i in T(v)} a_i, or (V(v) - V(parent))/(std + eps) with V = mean R over T(v); A[t in step] = A(v) * m",
        params: [
            .string("base", "grpo", "base trajectory advantage", choices: ["grpo", "rloo"]),
            .string("merge_key", "prefix", "node identity: full step history (tree) or the step's own tokens (graph)", choices: ["prefix", "state_action"]),
            .string("mode", "mean_trajectory_advantage", "step advantage", choices: ["mean_trajectory_advantage", "value_difference"]),
            .number("epsilon", 1e-6, "added to the group std"),
        ],
        requires: ["reward", "step_ends"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let method = params.method
        guard batch.stepEnds != nil else { throw FineGrainError.missingField(field: "step_ends", method: method) }
        let eps = try params.double("epsilon")
        let prefix = try params.string("merge_key") == "prefix"
        let valueDiff = try params.string("mode") == "value_difference"
        if valueDiff && !prefix {
            throw FineGrainError.invalidParameter(name: "mode", method: method, reason: "value_difference needs merge_key = prefix (a node must have one parent)")
        }
        let scores = try batch.scores(method: method)
        let gi = batch.groupIndex()
        let a: [Double]  // [R] base advantages
        if try params.string("base") == "grpo" {
            a = try GRPO.scalars(batch, normByStd: true, epsilon: eps, method: method)
        } else {
            var s = scores
            let mean = CreditKernels.groupMean(scores, gi)
            for r in 0 ..< s.count {
                let n = Double(gi.size(batch.group[r]))
                s[r] = gi.size(batch.group[r]) > 1 ? n / (n - 1) * (scores[r] - mean[batch.group[r]]) : 0
            }
            a = s
        }
        let (mu, sigma) = CreditKernels.groupMeanStd(scores, gi)
        let trie = try StepTrie(batch, leaves: .mergeAll, method: method)
        var out = [Double](repeating: 0, count: batch.tokenCount)  // [N]
        out.withUnsafeMutableBufferPointer { op in batch.mask.withUnsafeBufferPointer { mp in batch.tokens.withUnsafeBufferPointer { tp in
            let O = SharedMutablePointer(op), M = SharedPointer(mp), T = SharedPointer(tp)
            StepTrie.forEachGroup(batch) { g in
                guard let o = O.base, let m = M.base else { return }
                let members = gi.members[gi.start[g] ..< gi.start[g + 1]]
                if prefix {
                    var node: [Double]  // [nodes of g]
                    if valueDiff {
                        node = trie.subtreeMeans(g, members: members, scores)
                        let lo = trie.nodeStart[g]
                        var d = [Double](repeating: 0, count: node.count)
                        for v in 1 ..< Swift.max(1, node.count) {
                            let p = Int(trie.parent[lo + v]) - lo
                            d[v] = (node[v] - (p == 0 ? mu[g] : node[p])) / (sigma[g] + eps)
                        }
                        node = d
                    } else {
                        node = trie.subtreeMeans(g, members: members, a)
                    }
                    trie.fillTokens(g, members: members, node, batch: batch, mask: m, out: o)
                } else if let tok = T.base {
                    stateActionGroup(members, trie: trie, batch: batch, a: a, tokens: tok, mask: m, out: o)
                }
            }
        } } }
        return AdvantageOutput(advantages: out, returns: nil, diagnostics: ["nodes": Double(trie.used.reduce(0) { $0 + Int($1) })])
    }

    /// `merge_key = state_action`: sort the group's steps by content, so equal steps form runs; each run is
    /// one node whose advantage is the mean of `a_i` over the distinct trajectories in it.
    static func stateActionGroup(_ members: ArraySlice<Int>, trie: StepTrie, batch: RolloutBatch, a: [Double],
                                 tokens: UnsafePointer<Int32>, mask: UnsafePointer<UInt8>, out: UnsafeMutablePointer<Double>) {
        // (response, start, end) of every step of the group, absolute token indices. [steps of g]
        var steps = [(r: Int, lo: Int, hi: Int)]()
        for r in members {
            let base = batch.offsets[r]
            for s in trie.segOffsets[r] ..< trie.segOffsets[r + 1] {
                let v = Int(trie.segNode[s])
                steps.append((r, base + Int(trie.segStart[v]), base + Int(trie.segEnd[v])))
            }
        }
        @inline(__always) func cmp(_ x: (r: Int, lo: Int, hi: Int), _ y: (r: Int, lo: Int, hi: Int)) -> Int {
            let nx = x.hi - x.lo, ny = y.hi - y.lo
            let c = memcmp(tokens + x.lo, tokens + y.lo, Swift.min(nx, ny) * 4)
            if c != 0 { return c < 0 ? -1 : 1 }
            return nx == ny ? 0 : (nx < ny ? -1 : 1)
        }
        steps.sort { x, y in let c = cmp(x, y); return c != 0 ? c < 0 : x.r < y.r }
        var i = 0
        while i < steps.count {
            var j = i + 1
            while j < steps.count && cmp(steps[i], steps[j]) == 0 { j += 1 }
            // Run [i, j) sorted by response: count each trajectory once.
            var sum = 0.0, n = 0, last = -1
            for k in i ..< j where steps[k].r != last { sum += a[steps[k].r]; n += 1; last = steps[k].r }
            let adv = sum / Double(n)
            for k in i ..< j { for t in steps[k].lo ..< steps[k].hi { out[t] = mask[t] != 0 ? adv : 0 } }
            i = j
        }
    }
}
