/// PORTool: fork-relative step advantages in a tree of tool-call trajectories, blended with
/// trajectory-relative (GRPO) advantages.
///
/// Paper: Wu et al., "PORTool: Tool-Use LLM Training with Rewarded Tree" (2025, arXiv 2510.26020). No
/// reference code exists: this is the spec's reconstruction (credit_assignment.md §5, [recon]); every open
/// choice (step reward, decay, formatting term, fork normalisation, blend weights) is a parameter.
///
/// Inputs: `reward` (correctness c_i of trajectory i), `step_ends` (one step per tool call; they must cover
/// every token), optional `step_tool_success` (per-step format / tool-success flag f, needed when
/// `format_coef != 0`). The trajectories of a group form a tree by shared step prefixes (`StepTrie`); the
/// root (the query) is a fork over the first steps.
///
/// Formula: step reward `R(s) = max_{i ∈ m(s)} γ^(d_i − d(s)) c_i + α f(s)` (d = step depth, d_i the depth
/// of trajectory i's last step, m(s) the trajectories through s, f(s) the mean flag over them); fork
/// advantage for a node p with ≥ 2 children: `A_fork(c) = (R(c) − mean_{C(p)} R) / (std_{C(p)} R + ε)`
/// (population std by default), 0 under a single-child node; trajectory advantage `A_traj` = GRPO over c_i
/// (unbiased std, `traj_epsilon`), `Ā_traj(s) = mean_{i ∈ m(s)} A_traj(i)`; token advantage for every token
/// of step s: `(w_f A_fork(s) + w_t Ā_traj(s)) · m`.
public enum PORTool {
    public static let info = MethodInfo(
        name: "portool", kind: .estimator,
        summary: "PORTool [recon]: fork-relative step-reward advantages + mean trajectory GRPO advantage per tree step",
        paper: Citation("PORTool: Tool-Use LLM Training with Rewarded Tree", 2025, arxiv: "2510.26020"),
        formula: "R(s) = max_{i in m(s)} gamma^(d_i - d(s)) c_i + alpha f(s); A_fork(c) = (R(c) - mean_sib R)/(std_sib R + eps); A(s) = w_f A_fork(s) + w_t mean_{i in m(s)} GRPO(c)_i",
        params: [
            .number("gamma", 1.0, "decay per step between a step and a trajectory's last step, in (0, 1]"),
            .number("format_coef", 0.0, "alpha: weight of the per-step format / tool-success flag (step_tool_success)"),
            .number("fork_weight", 1.0, "w_f"),
            .number("trajectory_weight", 1.0, "w_t"),
            .number("epsilon", 1e-6, "added to the sibling std"),
            .string("fork_std", "population", "sibling std convention", choices: ["population", "unbiased"]),
            .number("traj_epsilon", 1e-6, "added to the group std of the trajectory (GRPO) advantage"),
        ],
        requires: ["reward", "step_ends", "step_tool_success (when format_coef != 0)"])

    public static let estimator = AdvantageEstimator(info: info, compute: compute)

    public static func compute(_ batch: RolloutBatch, _ params: Params) throws -> AdvantageOutput {
        let method = params.method
        guard batch.stepEnds != nil else { throw FineGrainError.missingField(field: "step_ends", method: method) }
        let gamma = try params.double("gamma"), alpha = try params.double("format_coef")
        try params.require("gamma", gamma > 0 && gamma <= 1, "must be in (0, 1]")
        let wf = try params.double("fork_weight"), wt = try params.double("trajectory_weight")
        let eps = try params.double("epsilon"), unbiased = try params.string("fork_std") == "unbiased"
        let flags: [Double] = alpha != 0 ? try batch.extraStepColumns["step_tool_success"]
            ?? { throw FineGrainError.missingField(field: "step_tool_success", method: method) }() : []
        let c = try batch.scores(method: method)
        let aTraj = try GRPO.scalars(batch, normByStd: true, epsilon: try params.double("traj_epsilon"), method: method)
        let gi = batch.groupIndex()
        let trie = try StepTrie(batch, leaves: .mergeAll, method: method)
        let so = batch.stepOffsets ?? []
        var out = [Double](repeating: 0, count: batch.tokenCount)  // [N]
        out.withUnsafeMutableBufferPointer { op in batch.mask.withUnsafeBufferPointer { mp in
            let O = SharedMutablePointer(op), M = SharedPointer(mp)
            StepTrie.forEachGroup(batch) { g in
                guard let o = O.base, let m = M.base else { return }
                let members = gi.members[gi.start[g] ..< gi.start[g + 1]]
                let lo = trie.nodeStart[g], n = Int(trie.used[g])
                // best[v] = max over trajectories through v of gamma^(d_i - d(v)) c_i, bottom-up. [nodes]
                var best = [Double](repeating: -.infinity, count: n)
                for r in members { let v = trie.terminal(r, group: g) - lo; best[v] = Swift.max(best[v], c[r]) }
                var fsum = [Double](repeating: 0, count: alpha != 0 ? n : 0), fcnt = fsum
                if alpha != 0 {
                    for r in members {
                        for (k, s) in (trie.segOffsets[r] ..< trie.segOffsets[r + 1]).enumerated() {
                            let v = Int(trie.segNode[s]) - lo; fsum[v] += flags[so[r] + k]; fcnt[v] += 1
                        }
                    }
                }
                var v = n - 1
                while v > 0 { let p = Int(trie.parent[lo + v]) - lo; best[p] = Swift.max(best[p], gamma * best[v]); v -= 1 }
                var reward = best  // R(s)
                if alpha != 0 { for u in 1 ..< Swift.max(1, n) where fcnt[u] > 0 { reward[u] += alpha * fsum[u] / fcnt[u] } }
                // Sibling statistics per parent.
                var sum = [Double](repeating: 0, count: n), cnt = sum, ss = sum
                for u in 1 ..< Swift.max(1, n) { let p = Int(trie.parent[lo + u]) - lo; sum[p] += reward[u]; cnt[p] += 1 }
                for u in 0 ..< n where cnt[u] > 0 { sum[u] /= cnt[u] }
                for u in 1 ..< Swift.max(1, n) { let p = Int(trie.parent[lo + u]) - lo; let d = reward[u] - sum[p]; ss[p] += d * d }
                let traj = trie.subtreeMeans(g, members: members, aTraj)
                var adv = [Double](repeating: 0, count: n)
                for u in 1 ..< Swift.max(1, n) {
                    let p = Int(trie.parent[lo + u]) - lo
                    var fork = 0.0
                    if cnt[p] >= 2 {
                        let std = (ss[p] / (unbiased ? cnt[p] - 1 : cnt[p])).squareRoot()
                        fork = (reward[u] - sum[p]) / (std + eps)
                    }
                    adv[u] = wf * fork + wt * traj[u]
                }
                trie.fillTokens(g, members: members, adv, batch: batch, mask: m, out: o)
            }
        } }
        return AdvantageOutput(advantages: out, returns: nil)
    }
}
