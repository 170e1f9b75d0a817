import FineGrain

/// The tiny GPT policy (see `GPTConfig`). Parameters live in one flat `parameters` buffer described by
/// `layout`; `gradients` is the parallel buffer that `backward` accumulates into (call `zeroGradients()`
/// between optimiser steps). `forward` keeps every activation of the last call for `backward`.
///
/// Variable-length rows: pass right-padded `[B, T]` tokens (any valid id as padding) and give padded
/// positions zero weight / zero `dLogprob`. Causal attention means padding after a row's end never
/// influences that row's real positions, and zero coefficients mean it contributes no gradient.
///
/// Not thread-safe: one instance per thread (use `FrozenReference` or `copy()` for a second policy).
public final class GPT: @unchecked Sendable {
    public let config: GPTConfig
    public let layout: ParameterLayout
    /// All parameters, laid out by `layout`.
    public var parameters: [Float]
    /// d loss / d parameters, same layout; accumulated by `backward`.
    public var gradients: [Float]
    var acts: Activations?
    /// When set, each layer call is charged to it (profiling; see `LayerTimer`).
    public var timer: LayerTimer?
    /// Shape of the last `forward` (`backward` applies to it).
    public private(set) var lastBatch = 0, lastLength = 0

    /// A freshly initialised model (GPT-2 init from `seed`).
    public init(config: GPTConfig, seed: UInt64) throws {
        try config.validate()
        self.config = config
        layout = ParameterLayout(config: config)
        parameters = layout.initialParameters(config: config, seed: seed)
        gradients = [Float](repeating: 0, count: layout.count)
    }

    /// A model with the given flat parameters (e.g. from a checkpoint).
    public init(config: GPTConfig, parameters: [Float]) throws {
        try config.validate()
        self.config = config
        layout = ParameterLayout(config: config)
        guard parameters.count == layout.count else {
            throw FineGrainError.invalidField(field: "parameters", reason: "expected \(layout.count) values for this config, got \(parameters.count)")
        }
        self.parameters = parameters
        gradients = [Float](repeating: 0, count: layout.count)
    }

    /// An independent model with a value copy of the parameters (zero gradients, no activations).
    public func copy() -> GPT { try! GPT(config: config, parameters: parameters) }

    public func zeroGradients() {
        gradients.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    // MARK: validation

    func validate(tokens: [Int32], batch: Int, length: Int, field: String = "tokens") throws {
        if batch < 1 { throw FineGrainError.invalidField(field: "batch", reason: "must be >= 1, got \(batch)") }
        if length < 1 { throw FineGrainError.invalidField(field: "length", reason: "must be >= 1, got \(length)") }
        if length > config.contextLength {
            throw FineGrainError.invalidField(field: "length", reason: "sequence length \(length) exceeds contextLength \(config.contextLength)")
        }
        if tokens.count != batch * length {
            throw FineGrainError.invalidField(field: field, reason: "expected batch*length = \(batch * length) ids, got \(tokens.count)")
        }
        let v = Int32(config.vocabSize)
        if let i = tokens.firstIndex(where: { $0 < 0 || $0 >= v }) {
            throw FineGrainError.invalidField(field: field, reason: "token id \(tokens[i]) at index \(i) is outside the vocabulary 0..<\(v)")
        }
    }

    func activations(batch: Int, length: Int) -> Activations {
        if let a = acts, a.B == batch, a.T == length { return a }
        let a = Activations(config: config, B: batch, T: length)
        acts = a
        return a
    }

    // MARK: forward

    /// Runs the model on `tokens [B*T]` (row-major `[B, T]`) and returns `logits [B, T, V]`
    /// (`logits[b,t]` predicts the token at `t+1`). Activations are kept for `backward`.
    @discardableResult
    public func forward(tokens: [Int32], batch: Int, length: Int) throws -> [Float] {
        try validate(tokens: tokens, batch: batch, length: length)
        let a = forwardValidated(tokens: tokens, batch: batch, length: length)
        return Array(UnsafeBufferPointer(start: a.logits.p, count: batch * length * config.vocabSize))
    }

    /// Forward without validation or copying the logits out; returns the activations. The batch rows run
    /// as `Parallel.batchShards` data-parallel shards (see `Parallel.shards`).
    @discardableResult
    func forwardValidated(tokens: [Int32], batch B: Int, length T: Int) -> Activations {
        timer?.lap("validate")
        let a = activations(batch: B, length: T)
        lastBatch = B
        lastLength = T
        tokens.withUnsafeBufferPointer { a.tokens.update(from: $0.baseAddress!, count: B * T) }
        let S = shardCount(batch: B)
        parameters.withUnsafeBufferPointer { pb in
            let p = pb.baseAddress!
            Parallel.shards(S) { s in
                forwardRows(a, p, rows: Parallel.shardRange(s, of: S, rows: B), timer: s == 0 ? timer : nil)
            }
        }
        timer?.lap("f.join")
        return a
    }

    /// Data-parallel shards for a batch of `B` rows (`Parallel.batchShards`, at most one per row).
    func shardCount(batch B: Int) -> Int { Swift.max(1, Swift.min(Parallel.batchShards, B)) }

    /// The whole forward for batch rows `rows` of `a` (every activation of those rows, nothing else).
    func forwardRows(_ a: Activations, _ p: UnsafePointer<Float>, rows: Range<Int>, timer: LayerTimer?) {
        let T = a.T, N = a.B * T
        let C = config.dModel, L = config.nLayers, NH = config.nHeads, V = config.vocabSize, H = config.mlpHidden
        let B = rows.count, n = B * T, r0 = rows.lowerBound * T // this shard's rows and first token
        let NC = N * C, c0 = r0 * C
        Embedding.forward(out: a.encoded.p + c0, tokens: a.tokens + r0, wte: p + layout.wte, wpe: p + layout.wpe, B: B, T: T, C: C)
        timer?.lap("f.embedding")
        for l in 0 ..< L {
            let o = layout.blocks[l]
            let residual = l == 0 ? a.encoded.p + c0 : a.residual3.p + (l - 1) * NC + c0 // [n, C]
            let ln1 = a.ln1.p + l * NC + c0, qkv = a.qkv.p + 3 * (l * NC + c0), atty = a.atty.p + l * NC + c0
            let att = a.att.p + (l * N + r0) * NH * T, attProj = a.attProj.p + l * NC + c0
            let res2 = a.residual2.p + l * NC + c0, ln2 = a.ln2.p + l * NC + c0
            let fch = a.fch.p + (l * N + r0) * H, fchGelu = a.fchGelu.p + (l * N + r0) * H
            let fcProj = a.fcProj.p + l * NC + c0, res3 = a.residual3.p + l * NC + c0
            let stat = l * N + r0
            LayerNorm.forward(out: ln1, mean: a.ln1Mean.p + stat, rstd: a.ln1Rstd.p + stat, inp: residual,
                              weight: p + o.ln1W, bias: p + o.ln1B, N: n, C: C)
            timer?.lap("f.layernorm")
            Linear.forward(out: qkv, inp: ln1, weight: p + o.qkvW, bias: p + o.qkvB, N: n, C: C, OC: 3 * C) // [n, 3C]
            timer?.lap("f.qkv")
            Attention.forward(out: atty, att: att, qkv: qkv, B: B, T: T, C: C, NH: NH)                     // [n, C]
            timer?.lap("f.attention")
            Linear.forward(out: attProj, inp: atty, weight: p + o.projW, bias: p + o.projB, N: n, C: C, OC: C)
            timer?.lap("f.attn_proj")
            Residual.forward(out: res2, a: residual, b: attProj, count: n * C)
            timer?.lap("f.residual")
            LayerNorm.forward(out: ln2, mean: a.ln2Mean.p + stat, rstd: a.ln2Rstd.p + stat, inp: res2,
                              weight: p + o.ln2W, bias: p + o.ln2B, N: n, C: C)
            timer?.lap("f.layernorm")
            Linear.forward(out: fch, inp: ln2, weight: p + o.fcW, bias: p + o.fcB, N: n, C: C, OC: H)       // [n, 4C]
            timer?.lap("f.fc")
            GELU.forward(out: fchGelu, inp: fch, count: n * H, tanhCache: a.fchTanh.p + (l * N + r0) * H)
            timer?.lap("f.gelu")
            Linear.forward(out: fcProj, inp: fchGelu, weight: p + o.fcProjW, bias: p + o.fcProjB, N: n, C: H, OC: C)
            timer?.lap("f.fc_proj")
            Residual.forward(out: res3, a: res2, b: fcProj, count: n * C)
            timer?.lap("f.residual")
        }
        let last = a.residual3.p + (L - 1) * NC + c0
        LayerNorm.forward(out: a.lnf.p + c0, mean: a.lnfMean.p + r0, rstd: a.lnfRstd.p + r0, inp: last,
                          weight: p + layout.lnfW, bias: p + layout.lnfB, N: n, C: C)
        timer?.lap("f.layernorm")
        Linear.forward(out: a.logits.p + r0 * V, inp: a.lnf.p + c0, weight: p + layout.wte, bias: nil, N: n, C: C, OC: V) // [n, V]
        timer?.lap("f.lm_head")
    }

    // MARK: backward

    /// Accumulates d loss / d parameters into `gradients`, given `dLogits [B, T, V]` = d loss / d logits
    /// of the last `forward`.
    public func backward(dLogits: [Float]) throws {
        guard let a = acts, lastBatch > 0 else {
            throw FineGrainError.unsupported(method: "GPT.backward", reason: "call forward first")
        }
        let n = lastBatch * lastLength * config.vocabSize
        guard dLogits.count == n else {
            throw FineGrainError.invalidField(field: "dLogits", reason: "expected B*T*V = \(n) values, got \(dLogits.count)")
        }
        dLogits.withUnsafeBufferPointer { a.dLogits.p.update(from: $0.baseAddress!, count: n) }
        backwardFromStoredDLogits(a)
    }
}
