extension RolloutBatch {
    /// Checks every structural invariant and every float column, throwing `FineGrainError.invalidField`
    /// with the JSONL name of the first offending field and the reason (response / token index included).
    ///
    /// Checked: non-empty batch; offsets start at 0, never decrease, end at N; every per-token column has
    /// N entries and every per-response column R; group indices in range; mask entries 0 or 1; no NaN or
    /// infinity in any reward, log-prob, value or extra column; step ends strictly increasing, in
    /// `1 ... length`, one step reward per step end.
    public func validate() throws {
        func bad(_ f: String, _ why: String) -> FineGrainError { .invalidField(field: f, reason: why) }
        guard count > 0 else { throw bad("rollouts", "the batch is empty (0 responses)") }
        guard offsets.first == 0 else { throw bad("offsets", "must start at 0, got \(offsets[0])") }
        for r in 0 ..< count where offsets[r + 1] < offsets[r] {
            throw bad("offsets", "decrease at response \(r)")
        }
        let n = tokenCount, rc = count
        if tokens.count != n { throw bad("tokens", "has \(tokens.count) entries, offsets say \(n)") }
        if mask.count != n { throw bad("mask", "has \(mask.count) entries but tokens has \(n)") }
        if let i = mask.firstIndex(where: { $0 > 1 }) { throw bad("mask", "entry \(i) is \(mask[i]); must be 0 or 1") }
        if group.count != rc { throw bad("group", "has \(group.count) entries for \(rc) responses") }
        if groupIDs.isEmpty { throw bad("group", "no group ids") }
        if let r = group.firstIndex(where: { $0 < 0 || $0 >= groupCount }) {
            throw bad("group", "response \(r) refers to unknown group index \(group[r]) (there are \(groupCount))")
        }
        func perResponse(_ c: [Double]?, _ f: String) throws {
            guard let c else { return }
            if c.count != rc { throw bad(f, "has \(c.count) entries for \(rc) responses") }
            if let r = c.firstIndex(where: { !$0.isFinite }) { throw bad(f, "response \(r) is \(c[r]); must be finite") }
        }
        func perToken(_ c: [Double]?, _ f: String) throws {
            guard let c else { return }
            if c.count != n { throw bad(f, "has \(c.count) entries but tokens has \(n)") }
            if let i = c.firstIndex(where: { !$0.isFinite }) {
                let r = responseOf(token: i)
                throw bad(f, "token \(i - offsets[r]) of response \(r) is \(c[i]); must be finite")
            }
        }
        try perResponse(outcome, "reward")
        try perResponse(rewardBaseline, "reward_baseline")
        for (k, v) in namedRewards.sorted(by: { $0.key < $1.key }) { try perResponse(v, "rewards.\(k)") }
        try perToken(logprob, "logprobs")
        try perToken(oldLogprob, "old_logprobs")
        try perToken(refLogprob, "ref_logprobs")
        try perToken(entropy, "entropies")
        try perToken(value, "values")
        try perToken(tokenReward, "token_rewards")
        for (k, v) in extraTokenColumns.sorted(by: { $0.key < $1.key }) { try perToken(v, k) }
        try validateSteps()
    }

    private func validateSteps() throws {
        func bad(_ f: String, _ why: String) -> FineGrainError { .invalidField(field: f, reason: why) }
        guard stepOffsets != nil || stepEnds != nil || stepReward != nil || !extraStepColumns.isEmpty else { return }
        guard let so = stepOffsets, let ends = stepEnds else {
            throw bad("step_ends", "step_rewards given without step_ends")
        }
        if so.count != count + 1 || so.first != 0 || so.last != ends.count {
            throw bad("step_ends", "step offsets do not cover the \(ends.count) step ends")
        }
        for r in 0 ..< count {
            if so[r + 1] < so[r] { throw bad("step_ends", "step offsets decrease at response \(r)") }
            var prev = 0
            for s in so[r] ..< so[r + 1] {
                let e = ends[s]
                if e <= prev || e > length(r) {
                    throw bad("step_ends", "response \(r): step end \(e) out of range (must be increasing, in \(prev + 1)...\(length(r)))")
                }
                prev = e
            }
        }
        for (k, c) in extraStepColumns.sorted(by: { $0.key < $1.key }) {
            if c.count != ends.count { throw bad(k, "has \(c.count) entries for \(ends.count) step ends") }
            if let s = c.firstIndex(where: { !$0.isFinite }) { throw bad(k, "step \(s) is \(c[s]); must be finite") }
        }
        if let sr = stepReward {
            if sr.count != ends.count { throw bad("step_rewards", "has \(sr.count) entries for \(ends.count) step ends") }
            if let s = sr.firstIndex(where: { !$0.isFinite }) { throw bad("step_rewards", "step \(s) is \(sr[s]); must be finite") }
        }
    }

    /// The response that owns token `i` (binary search over offsets).
    public func responseOf(token i: Int) -> Int {
        var lo = 0, hi = count
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if offsets[mid] <= i { lo = mid } else { hi = mid }
        }
        return lo
    }
}
