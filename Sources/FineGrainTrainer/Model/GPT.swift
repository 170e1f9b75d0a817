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

    /// Forward without validation or copying the logits out; returns the activations.
    @discardableResult
    func forwardValidated(tokens: [Int32], batch B: Int, length T: Int) -> Activations {
        let a = activations(batch: B, length: T)
        lastBatch = B
        lastLength = T
        let C = config.dModel, L = config.nLayers, NH = config.nHeads, V = config.vocabSize, H = config.mlpHidden
        let N = B * T, NC = N * C
        tokens.withUnsafeBufferPointer { a.tokens.update(from: $0.baseAddress!, count: N) }
        parameters.withUnsafeBufferPointer { pb in
            let p = pb.baseAddress!
            Embedding.forward(out: a.encoded.p, tokens: a.tokens, wte: p + layout.wte, wpe: p + layout.wpe, B: B, T: T, C: C)
            for l in 0 ..< L {
                let o = layout.blocks[l]
                let residual = l == 0 ? a.encoded.p : a.residual3.p + (l - 1) * NC // [N, C]
                let ln1 = a.ln1.p + l * NC, qkv = a.qkv.p + l * 3 * NC, atty = a.atty.p + l * NC
                let att = a.att.p + l * B * NH * T * T, attProj = a.attProj.p + l * NC
                let res2 = a.residual2.p + l * NC, ln2 = a.ln2.p + l * NC
                let fch = a.fch.p + l * N * H, fchGelu = a.fchGelu.p + l * N * H
                let fcProj = a.fcProj.p + l * NC, res3 = a.residual3.p + l * NC
                LayerNorm.forward(out: ln1, mean: a.ln1Mean.p + l * N, rstd: a.ln1Rstd.p + l * N, inp: residual,
                                  weight: p + o.ln1W, bias: p + o.ln1B, N: N, C: C)
                Linear.forward(out: qkv, inp: ln1, weight: p + o.qkvW, bias: p + o.qkvB, N: N, C: C, OC: 3 * C) // [N, 3C]
                Attention.forward(out: atty, att: att, qkv: qkv, B: B, T: T, C: C, NH: NH)                     // [N, C]
                Linear.forward(out: attProj, inp: atty, weight: p + o.projW, bias: p + o.projB, N: N, C: C, OC: C)
                Residual.forward(out: res2, a: residual, b: attProj, count: NC)
                LayerNorm.forward(out: ln2, mean: a.ln2Mean.p + l * N, rstd: a.ln2Rstd.p + l * N, inp: res2,
                                  weight: p + o.ln2W, bias: p + o.ln2B, N: N, C: C)
                Linear.forward(out: fch, inp: ln2, weight: p + o.fcW, bias: p + o.fcB, N: N, C: C, OC: H)       // [N, 4C]
                GELU.forward(out: fchGelu, inp: fch, count: N * H, tanhCache: a.fchTanh.p + l * N * H)
                Linear.forward(out: fcProj, inp: fchGelu, weight: p + o.fcProjW, bias: p + o.fcProjB, N: N, C: H, OC: C)
                Residual.forward(out: res3, a: res2, b: fcProj, count: NC)
            }
            let last = a.residual3.p + (L - 1) * NC
            LayerNorm.forward(out: a.lnf.p, mean: a.lnfMean.p, rstd: a.lnfRstd.p, inp: last,
                              weight: p + layout.lnfW, bias: p + layout.lnfB, N: N, C: C)
            Linear.forward(out: a.logits.p, inp: a.lnf.p, weight: p + layout.wte, bias: nil, N: N, C: C, OC: V) // [N, V]
        }
        return a
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

    /// Backward from `a.dLogits` (already filled).
    func backwardFromStoredDLogits(_ a: Activations) {
        let B = a.B, T = a.T
        let C = config.dModel, L = config.nLayers, NH = config.nHeads, V = config.vocabSize, H = config.mlpHidden
        let N = B * T, NC = N * C
        parameters.withUnsafeBufferPointer { pb in
            gradients.withUnsafeMutableBufferPointer { gb in
                let p = pb.baseAddress!, g = gb.baseAddress!
                let dres = a.dResidual.p, dln = a.dLn.p
                // tied LM head: logits = lnf wte^T
                a.dLn.zero()
                Linear.backward(dinp: dln, dweight: g + layout.wte, dbias: nil, dout: a.dLogits.p,
                                inp: a.lnf.p, weight: p + layout.wte, N: N, C: C, OC: V)
                a.dResidual.zero()
                LayerNorm.backward(dinp: dres, dweight: g + layout.lnfW, dbias: g + layout.lnfB, dout: dln,
                                   inp: a.residual3.p + (L - 1) * NC, weight: p + layout.lnfW,
                                   mean: a.lnfMean.p, rstd: a.lnfRstd.p, N: N, C: C)
                for l in stride(from: L - 1, through: 0, by: -1) {
                    // dres = d residual3[l] = d residual2 (skip path) = d fcProj.
                    let o = layout.blocks[l]
                    let residual = l == 0 ? a.encoded.p : a.residual3.p + (l - 1) * NC
                    let ln1 = a.ln1.p + l * NC, qkv = a.qkv.p + l * 3 * NC, atty = a.atty.p + l * NC
                    let att = a.att.p + l * B * NH * T * T
                    let res2 = a.residual2.p + l * NC, ln2 = a.ln2.p + l * NC
                    let fch = a.fch.p + l * N * H, fchGelu = a.fchGelu.p + l * N * H
                    a.dFchGelu.zero()
                    Linear.backward(dinp: a.dFchGelu.p, dweight: g + o.fcProjW, dbias: g + o.fcProjB, dout: dres,
                                    inp: fchGelu, weight: p + o.fcProjW, N: N, C: H, OC: C)
                    a.dFch.zero()
                    GELU.backward(dinp: a.dFch.p, inp: fch, dout: a.dFchGelu.p, count: N * H, tanhCache: a.fchTanh.p + l * N * H)
                    a.dLn.zero()
                    Linear.backward(dinp: dln, dweight: g + o.fcW, dbias: g + o.fcB, dout: a.dFch.p,
                                    inp: ln2, weight: p + o.fcW, N: N, C: C, OC: H)
                    // dres += LN2 path: now dres = d residual2 = d residual (skip) = d attProj.
                    LayerNorm.backward(dinp: dres, dweight: g + o.ln2W, dbias: g + o.ln2B, dout: dln, inp: res2,
                                       weight: p + o.ln2W, mean: a.ln2Mean.p + l * N, rstd: a.ln2Rstd.p + l * N, N: N, C: C)
                    a.dAtty.zero()
                    Linear.backward(dinp: a.dAtty.p, dweight: g + o.projW, dbias: g + o.projB, dout: dres,
                                    inp: atty, weight: p + o.projW, N: N, C: C, OC: C)
                    a.dQkv.zero()
                    Attention.backward(dqkv: a.dQkv.p, dout: a.dAtty.p, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH)
                    a.dLn.zero()
                    Linear.backward(dinp: dln, dweight: g + o.qkvW, dbias: g + o.qkvB, dout: a.dQkv.p,
                                    inp: ln1, weight: p + o.qkvW, N: N, C: C, OC: 3 * C)
                    // dres += LN1 path: now dres = d residual (this block's input).
                    LayerNorm.backward(dinp: dres, dweight: g + o.ln1W, dbias: g + o.ln1B, dout: dln, inp: residual,
                                       weight: p + o.ln1W, mean: a.ln1Mean.p + l * N, rstd: a.ln1Rstd.p + l * N, N: N, C: C)
                }
                Embedding.backward(dwte: g + layout.wte, dwpe: g + layout.wpe, dout: dres, tokens: a.tokens, B: B, T: T, C: C)
            }
        }
    }
}
