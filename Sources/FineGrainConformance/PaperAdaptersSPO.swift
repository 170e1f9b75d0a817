import FineGrain

/// Conformance adapters for the SPO reference (AIFrameResearch/SPO, golden/papers/spo_*.json).
///
/// Every adapter sets `reference_compatible = true`, which makes FineGrain reproduce the reference's quirks
/// (see `SPOChain`, `SPOTree`, `SPOWhiten`). The trainer's `masked_whiten` shares its function name with
/// verl's file, so verl's `masked_whiten` adapter hands SPO cases (those with a `logprobs` input) to
/// `spoMaskedWhiten`.
let spoAdapters: [ConformanceAdapter] = [
    // Both the MC-advantage generator and its naive variant are named `_compute_token_advantages`;
    // the naive file is recognised by its `response_length` input.
    ConformanceAdapter("MathEpisodeGeneratorWithMCAdvantages._compute_token_advantages") { c in
        c.inputs["response_length"] != nil ? try spoChainNaive(c) : try spoChain(c)
    },
    ConformanceAdapter("HybridInferenceStrategy._construct_tree + TreeEpisodeUtils.extract_edges_from_tree") { c in
        try spoTree(c)
    },
]

/// One response of length L with cut values placed in `mc_values` (last write wins, as the reference).
private func chainBatch(length: Int, cutpoints: [Int], values: [Double], score: Double) throws -> RolloutBatch {
    guard values.count == cutpoints.count else {
        throw FineGrainError.invalidField(field: "cutpoint_values", reason: "has \(values.count) values for \(cutpoints.count) cut points")
    }
    var b = RolloutBatch(groups: [.int(0)], lengths: [length])
    var mc = [Double](repeating: 0, count: length)
    for (c, v) in zip(cutpoints, values) {
        if c >= 0 && c < length { mc[c] = v } else if c == -1 { b.rewardBaseline = [v] }
    }
    b.extraTokenColumns["mc_values"] = mc
    b.outcome = [score]
    return b
}

private func chainOutputs(_ b: RolloutBatch, _ cuts: [Int], _ values: [Double], _ score: Double,
                          _ params: [String: ParamValue]) throws -> [String: JSONValue] {
    let out = try Registry.advantages("spo_chain", batch: b, params: params)
    let tv = SPOChain.referenceTokenValues(length: b.tokenCount, cutpoints: cuts, values: values, score: score)
    return ["cutpoints": .numbers(cuts.map(Double.init)),
            "token_values": .array(tv.map { $0.map(JSONValue.number) ?? .null }),
            "advantages": .numbers(out.advantages)]
}

private func spoChain(_ c: GoldenCase) throws -> [String: JSONValue] {
    let lp = try c.vector("response_logprobs"), values = try c.vector("cutpoint_values")
    guard let score = try c.input("score").doubleValue else { throw FineGrainError.invalidField(field: "score", reason: "not a number") }
    let k = Int(c.param("cutpoint_interval")?.doubleValue ?? 5)
    let cuts = SPOChain.cutpoints(logprobs: lp, threshold: 0.9, interval: k)
    var b = try chainBatch(length: lp.count, cutpoints: cuts, values: values, score: score)
    b.oldLogprob = lp
    return try chainOutputs(b, cuts, values, score, ["cutpoint_interval": .number(Double(k)), "reference_compatible": .bool(true)])
}

private func spoChainNaive(_ c: GoldenCase) throws -> [String: JSONValue] {
    guard let l = try c.input("response_length").doubleValue, l >= 0, l == l.rounded() else {
        throw FineGrainError.invalidField(field: "response_length", reason: "must be a non-negative integer")
    }
    let values = try c.vector("cutpoint_values")
    guard let score = try c.input("score").doubleValue else { throw FineGrainError.invalidField(field: "score", reason: "not a number") }
    let k = Int(c.param("k")?.doubleValue ?? 4)
    let cuts = SPOChain.fixedCutpoints(length: Int(l), segments: k)
    let b = try chainBatch(length: Int(l), cutpoints: cuts, values: values, score: score)
    return try chainOutputs(b, cuts, values, score, ["partition": .string("fixed"), "num_segments": .number(Double(k)),
                                                     "use_prob_mask": .bool(false), "reference_compatible": .bool(true)])
}

/// Flattens the reference tree into root-to-leaf responses (DFS order) with `step_ends` at the ends of the
/// internal nodes, runs `spo_tree`, and maps FineGrain's nodes back to the tree's ids.
private func spoTree(_ c: GoldenCase) throws -> [String: JSONValue] {
    let tree = try c.input("tree")
    struct Leaf { var path: [Int]; var tokens: [Int32]; var ends: [Int]; var reward: Double }
    var leaves = [Leaf](), order = [(id: Int, parent: Int, leaf: Bool)]()
    func walk(_ n: JSONValue, parent: Int, path: [Int], tokens: [Int32], ends: [Int]) throws {
        guard let id = n["id"]?.doubleValue.map({ Int($0) }), let kids = n["children"]?.arrayValue else {
            throw FineGrainError.invalidField(field: "tree", reason: "node without id or children")
        }
        let seg = try (n["tokens"] ?? .array([])).doubles(field: "tree.tokens").map { Int32($0) }
        let toks = tokens + seg, p = parent < 0 ? [] : path + [id]
        if parent >= 0 { order.append((id, parent, kids.isEmpty)) }
        if kids.isEmpty {
            guard parent >= 0 else { return }
            guard let r = n["reward"]?.doubleValue else { throw FineGrainError.invalidField(field: "tree.reward", reason: "leaf \(id) has no reward") }
            leaves.append(Leaf(path: p, tokens: toks, ends: ends, reward: r))
        } else {
            for k in kids { try walk(k, parent: id, path: p, tokens: toks, ends: parent < 0 ? ends : ends + [toks.count]) }
        }
    }
    try walk(tree, parent: -1, path: [], tokens: [], ends: [])
    let rootID = Int(tree["id"]?.doubleValue ?? 0)
    var b = RolloutBatch(groups: leaves.map { _ in .int(0) }, lengths: leaves.map { $0.tokens.count }, tokens: leaves.flatMap { $0.tokens })
    b.outcome = leaves.map(\.reward)
    var so = [0]; for l in leaves { so.append(so[so.count - 1] + l.ends.count) }
    b.stepOffsets = so; b.stepEnds = leaves.flatMap(\.ends)
    var params: [String: ParamValue] = ["use_prob_mask": .bool(false), "reference_compatible": .bool(true)]
    if let m = c.param("adv_method").flatMap(ParamValue.init(json:)) { params["adv_method"] = m }
    if let k = c.param("only_adv_greater_than_zero").flatMap(ParamValue.init(json:)) { params["drop_zero_advantage_edges"] = k }
    let adv = try Registry.advantages("spo_tree", batch: b, params: params).advantages
    let a = try SPOTree.analyze(b, params: params)
    // Tree id -> FineGrain node, and the response whose copy of the segment carries the advantage.
    var node = [Int: Int](), rootNode = a.nodeStart[0]
    node[rootID] = rootNode
    for (r, l) in leaves.enumerated() { for (j, id) in l.path.enumerated() { node[id] = a.segNode[a.segOffsets[r] + j] } }
    var owner = [Int: (Int, Int)]()  // node -> (response, segment start)
    for (r, l) in leaves.enumerated() {
        var start = 0
        for j in 0 ..< l.path.count {
            let v = a.segNode[a.segOffsets[r] + j]
            if owner[v] == nil { owner[v] = (r, start) }
            start += a.segmentLength[v]
        }
    }
    func nv(_ id: Int) -> JSONValue {
        let v = node[id]!
        return .object(["id": .number(Double(id)), "reward": .number(a.value[v]),
                        "reward_std": a.childStd[v].isNaN ? .null : .number(a.childStd[v])])
    }
    var edges = [JSONValue]()
    for e in order {
        guard let v = node[e.id], let p = node[e.parent] else { continue }
        guard a.passesFilter[v] else { continue }
        var toks = [Double]()
        if a.kept[v], let (r, start) = owner[v] {
            let lo = b.offsets[r] + start
            toks = Array(adv[lo ..< lo + a.segmentLength[v]])
        }
        edges.append(.object(["child_id": .number(Double(e.id)), "parent_id": .number(Double(e.parent)),
            "advantage": .number(a.advantage[v]),
            "prover_advantage": .number(SPOTree.bestOfK(a.value[v]) - SPOTree.bestOfK(a.value[p])),
            "value": .number(a.value[v]), "leaf": .bool(e.leaf), "kept": .bool(a.kept[v]), "token_advantages": .numbers(toks)]))
    }
    let ids = [rootID] + order.map(\.id)
    return ["node_values": .array(ids.sorted().map(nv)), "edges": .array(edges)]
}

/// The SPO trainer's `masked_whiten` (golden/papers/spo_masked_whiten.json).
func spoMaskedWhiten(_ c: GoldenCase) throws -> [String: JSONValue] {
    let x = try c.matrix("values"), m = try c.matrix("mask")
    let width = x.first?.count ?? 0
    let lp = c.hasInput("logprobs") ? try c.matrix("logprobs").flatMap { $0 } : nil
    let y = try SPOWhiten.maskedWhiten(x.flatMap { $0 }, mask: m.flatMap { $0 }.map { $0 != 0 ? 1 : 0 }, oldLogprobs: lp,
                                       shiftMean: c.param("shift_mean")?.boolValue ?? true,
                                       unbiased: c.param("unbiased_variance")?.boolValue ?? true, referenceCompatible: true)
    return ["whitened": .matrix(stride(from: 0, to: y.count, by: Swift.max(1, width)).map { Array(y[$0 ..< $0 + width]) })]
}
