// Registry entries of the SPO family (SPO-chain, SPO-tree) and the tree-structured step methods that share
// its `StepTrie` (SALT, PORTool), plus the synthetic SPO-tree benchmark batch.

enum SPO {
    static let estimators: [AdvantageEstimator] = [SPOChain.estimator, SPOTree.estimator, SALT.estimator, PORTool.estimator]
}

extension SyntheticBatch {
    /// SPO-tree benchmark batch: `responses / group` groups, each a random rollout tree flattened into
    /// `group` root-to-leaf responses (lengths up to `maxLength`, about uniform in `1...maxLength`).
    ///
    /// Response 0 of a group is fresh random tokens cut into segments of 1...600 tokens (SPO's long-CoT
    /// budget M = 600); each later response copies the tokens and step ends of a random earlier response up
    /// to a random one of its step ends (a tree branch point) and continues with fresh segments to its own
    /// random target length. Outcome Bernoulli(0.5) in `reward`, old log-probs `-|N(0,1)|` (so ~30% of
    /// tokens fall below p = 0.9), all tokens policy tokens.
    public static func spoTreeBenchmark(responses: Int = 512, maxLength: Int = 4096, group: Int = 8, seed: UInt64 = 0) -> RolloutBatch {
        var rng = SplitMix64(seed: seed)
        let gsize = Swift.max(1, group), maxL = Swift.max(1, maxLength)
        var paths = [[Int32]](), stepEnds = [[Int]]()
        for r in 0 ..< responses {
            let target = 1 + Int(rng.next() % UInt64(maxL))
            var toks = [Int32](), ends = [Int]()
            let first = r - r % gsize
            if r > first {
                let p = first + Int(rng.next() % UInt64(r - first))
                let pe = stepEnds[p]
                if !pe.isEmpty {
                    let k = Int(rng.next() % UInt64(pe.count + 1))   // share k segments (0 = branch at the root)
                    if k > 0 { toks = Array(paths[p][0 ..< pe[k - 1]]); ends = Array(pe[0 ..< k]) }
                }
            }
            repeat {  // at least one fresh segment, so every leaf has tokens
                let seg = Swift.min(1 + Int(rng.next() % 600), Swift.max(1, target - toks.count))
                for _ in 0 ..< seg { toks.append(Int32(truncatingIfNeeded: rng.next() % 32000)) }
                if toks.count < target { ends.append(toks.count) }
            } while toks.count < target
            paths.append(toks); stepEnds.append(ends)
        }
        let groups = (0 ..< responses).map { GroupID.int($0 / gsize) }
        var b = RolloutBatch(groups: groups, lengths: paths.map(\.count), tokens: paths.flatMap { $0 })
        b.outcome = (0 ..< responses).map { _ in rng.uniform() < 0.5 ? 1 : 0 }
        var so = [0]; for e in stepEnds { so.append(so[so.count - 1] + e.count) }
        b.stepOffsets = so; b.stepEnds = stepEnds.flatMap { $0 }
        b.oldLogprob = (0 ..< b.tokenCount).map { _ in -abs(rng.normal()) * 0.3 }
        return b
    }
}
