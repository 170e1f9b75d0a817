extension GPT {
    /// Backward from `a.dLogits` (already filled): each of the forward's batch shards runs the whole
    /// backward on its rows, shard 0 into `gradients`, shard `s > 0` into its own zeroed buffer; those are
    /// then added to `gradients` in shard order (so the result does not depend on the thread count).
    func backwardFromStoredDLogits(_ a: Activations) {
        let S = shardCount(batch: a.B), P = layout.count
        if S > 1 && (a.shardGradients?.count ?? 0) != (S - 1) * P { a.shardGradients = FloatBuffer((S - 1) * P) }
        let scratch = a.shardGradients
        parameters.withUnsafeBufferPointer { pb in
            gradients.withUnsafeMutableBufferPointer { gb in
                let p = pb.baseAddress!, g = gb.baseAddress!
                Parallel.shards(S) { s in
                    var gs = g
                    if s > 0 {
                        gs = scratch!.p + (s - 1) * P
                        gs.update(repeating: 0, count: P)
                    }
                    backwardRows(a, p, gs, rows: Parallel.shardRange(s, of: S, rows: a.B), timer: s == 0 ? timer : nil)
                }
                timer?.lap("b.join")
                if S > 1 {
                    for s in 1 ..< S { addInPlace(g, scratch!.p + (s - 1) * P, P) }
                    timer?.lap("b.reduce")
                }
            }
        }
    }

    /// The whole backward for batch rows `rows`: reads their activations and `dLogits`, uses their rows of
    /// the scratch gradient buffers, and accumulates parameter gradients into `g` (a `layout`-shaped buffer).
    func backwardRows(_ a: Activations, _ p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                      rows: Range<Int>, timer: LayerTimer?) {
        let T = a.T, N = a.B * T
        let C = config.dModel, L = config.nLayers, NH = config.nHeads, V = config.vocabSize, H = config.mlpHidden
        let B = rows.count, n = B * T, r0 = rows.lowerBound * T
        let NC = N * C, c0 = r0 * C
        let dres = a.dResidual.p + c0, dln = a.dLn.p + c0, datty = a.dAtty.p + c0
        let dqkv = a.dQkv.p + 3 * c0, dfch = a.dFch.p + r0 * H, dfchGelu = a.dFchGelu.p + r0 * H
        // tied LM head: logits = lnf wte^T
        Linear.backward(dinp: dln, dweight: g + layout.wte, dbias: nil, dout: a.dLogits.p + r0 * V,
                        inp: a.lnf.p + c0, weight: p + layout.wte, N: n, C: C, OC: V, accumulate: false)
        timer?.lap("b.lm_head")
        LayerNorm.backward(dinp: dres, dweight: g + layout.lnfW, dbias: g + layout.lnfB, dout: dln,
                           inp: a.residual3.p + (L - 1) * NC + c0, weight: p + layout.lnfW,
                           mean: a.lnfMean.p + r0, rstd: a.lnfRstd.p + r0, N: n, C: C, accumulate: false)
        timer?.lap("b.layernorm")
        for l in stride(from: L - 1, through: 0, by: -1) {
            // dres = d residual3[l] = d residual2 (skip path) = d fcProj.
            let o = layout.blocks[l]
            let residual = l == 0 ? a.encoded.p + c0 : a.residual3.p + (l - 1) * NC + c0
            let ln1 = a.ln1.p + l * NC + c0, qkv = a.qkv.p + 3 * (l * NC + c0), atty = a.atty.p + l * NC + c0
            let att = a.att.p + (l * N + r0) * NH * T
            let res2 = a.residual2.p + l * NC + c0, ln2 = a.ln2.p + l * NC + c0
            let fch = a.fch.p + (l * N + r0) * H, fchGelu = a.fchGelu.p + (l * N + r0) * H
            let stat = l * N + r0
            Linear.backward(dinp: dfchGelu, dweight: g + o.fcProjW, dbias: g + o.fcProjB, dout: dres,
                            inp: fchGelu, weight: p + o.fcProjW, N: n, C: H, OC: C, accumulate: false)
            timer?.lap("b.fc_proj")
            GELU.backward(dinp: dfch, inp: fch, dout: dfchGelu, count: n * H, tanhCache: a.fchTanh.p + (l * N + r0) * H,
                          accumulate: false)
            timer?.lap("b.gelu")
            Linear.backward(dinp: dln, dweight: g + o.fcW, dbias: g + o.fcB, dout: dfch,
                            inp: ln2, weight: p + o.fcW, N: n, C: C, OC: H, accumulate: false)
            timer?.lap("b.fc")
            // dres += LN2 path: now dres = d residual2 = d residual (skip) = d attProj.
            LayerNorm.backward(dinp: dres, dweight: g + o.ln2W, dbias: g + o.ln2B, dout: dln, inp: res2,
                               weight: p + o.ln2W, mean: a.ln2Mean.p + stat, rstd: a.ln2Rstd.p + stat, N: n, C: C)
            timer?.lap("b.layernorm")
            Linear.backward(dinp: datty, dweight: g + o.projW, dbias: g + o.projB, dout: dres,
                            inp: atty, weight: p + o.projW, N: n, C: C, OC: C, accumulate: false)
            timer?.lap("b.attn_proj")
            Attention.backward(dqkv: dqkv, dout: datty, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH, accumulate: false)
            timer?.lap("b.attention")
            Linear.backward(dinp: dln, dweight: g + o.qkvW, dbias: g + o.qkvB, dout: dqkv,
                            inp: ln1, weight: p + o.qkvW, N: n, C: C, OC: 3 * C, accumulate: false)
            timer?.lap("b.qkv")
            // dres += LN1 path: now dres = d residual (this block's input).
            LayerNorm.backward(dinp: dres, dweight: g + o.ln1W, dbias: g + o.ln1B, dout: dln, inp: residual,
                               weight: p + o.ln1W, mean: a.ln1Mean.p + stat, rstd: a.ln1Rstd.p + stat, N: n, C: C)
            timer?.lap("b.layernorm")
        }
        Embedding.backward(dwte: g + layout.wte, dwpe: g + layout.wpe, dout: dres, tokens: a.tokens + r0, B: B, T: T, C: C)
        timer?.lap("b.embedding")
    }
}
