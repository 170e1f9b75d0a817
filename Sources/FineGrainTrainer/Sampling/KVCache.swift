/// Per-layer key/value cache for incremental decoding, plus the per-step scratch buffers, sized for
/// `B` rows and `maxT` positions. Layout: `k, v [L, B, NH, maxT, hs]`. Allocated once per `sample` call;
/// a decoding step allocates nothing.
final class KVCache {
    let B: Int, maxT: Int
    let k, v: FloatBuffer            // [L, B, NH, maxT, hs]
    let x, ln, atty, tmp: FloatBuffer // [B, C]
    let mean, rstd: FloatBuffer      // [B]
    let qkv: FloatBuffer             // [B, 3C]
    let fch, fchGelu: FloatBuffer    // [B, 4C]
    let logits: FloatBuffer          // [B, V]
    let attScratch: FloatBuffer      // [B, NH, maxT]
    let tokens: UnsafeMutablePointer<Int32> // [B]

    init(config: GPTConfig, B: Int, maxT: Int) {
        self.B = B
        self.maxT = maxT
        let C = config.dModel, L = config.nLayers
        k = FloatBuffer(L * B * C * maxT)
        v = FloatBuffer(L * B * C * maxT)
        x = FloatBuffer(B * C); ln = FloatBuffer(B * C); atty = FloatBuffer(B * C); tmp = FloatBuffer(B * C)
        mean = FloatBuffer(B); rstd = FloatBuffer(B)
        qkv = FloatBuffer(B * 3 * C)
        fch = FloatBuffer(B * config.mlpHidden); fchGelu = FloatBuffer(B * config.mlpHidden)
        logits = FloatBuffer(B * config.vocabSize)
        attScratch = FloatBuffer(B * config.nHeads * maxT)
        tokens = .allocate(capacity: B)
        tokens.initialize(repeating: 0, count: B)
    }

    deinit { tokens.deallocate() }
}

extension GPT {
    /// One decoding step: the tokens in `cache.tokens [B]` sit at position `pos` (the same for every row);
    /// their keys/values are appended to the cache and `cache.logits [B, V]` receives the next-token logits.
    /// Positions `0 ..< pos` must already be in the cache.
    func decodeStep(_ cache: KVCache, pos: Int) {
        let B = cache.B, C = config.dModel, NH = config.nHeads, H = config.mlpHidden, V = config.vocabSize
        let layerStride = B * C * cache.maxT
        parameters.withUnsafeBufferPointer { pb in
            let p = pb.baseAddress!
            let x = cache.x.p, ln = cache.ln.p, tmp = cache.tmp.p
            for b in 0 ..< B {
                let e = p + layout.wte + Int(cache.tokens[b]) * C, w = p + layout.wpe + pos * C, o = x + b * C
                for i in 0 ..< C { o[i] = e[i] + w[i] }
            }
            for l in 0 ..< config.nLayers {
                let o = layout.blocks[l]
                LayerNorm.forward(out: ln, mean: cache.mean.p, rstd: cache.rstd.p, inp: x, weight: p + o.ln1W, bias: p + o.ln1B, N: B, C: C)
                Linear.forward(out: cache.qkv.p, inp: ln, weight: p + o.qkvW, bias: p + o.qkvB, N: B, C: C, OC: 3 * C) // [B, 3C]
                Attention.forwardStep(out: cache.atty.p, qkv: cache.qkv.p, kCache: cache.k.p + l * layerStride,
                                      vCache: cache.v.p + l * layerStride, scratch: cache.attScratch.p,
                                      B: B, pos: pos, maxT: cache.maxT, C: C, NH: NH)                       // [B, C]
                Linear.forward(out: tmp, inp: cache.atty.p, weight: p + o.projW, bias: p + o.projB, N: B, C: C, OC: C)
                for i in 0 ..< B * C { x[i] += tmp[i] }
                LayerNorm.forward(out: ln, mean: cache.mean.p, rstd: cache.rstd.p, inp: x, weight: p + o.ln2W, bias: p + o.ln2B, N: B, C: C)
                Linear.forward(out: cache.fch.p, inp: ln, weight: p + o.fcW, bias: p + o.fcB, N: B, C: C, OC: H)       // [B, 4C]
                GELU.forward(out: cache.fchGelu.p, inp: cache.fch.p, count: B * H)
                Linear.forward(out: tmp, inp: cache.fchGelu.p, weight: p + o.fcProjW, bias: p + o.fcProjB, N: B, C: H, OC: C)
                for i in 0 ..< B * C { x[i] += tmp[i] }
            }
            LayerNorm.forward(out: ln, mean: cache.mean.p, rstd: cache.rstd.p, inp: x, weight: p + layout.lnfW, bias: p + layout.lnfB, N: B, C: C)
            Linear.forward(out: cache.logits.p, inp: ln, weight: p + layout.wte, bias: nil, N: B, C: C, OC: V) // [B, V]
        }
    }

    /// Logits `[B, T, V]` of `tokens [B, T]` computed one position at a time through the KV cache (the path
    /// `sample` uses); equal to `forward` up to float rounding. For tests and diagnostics.
    public func incrementalLogits(tokens: [Int32], batch: Int, length: Int) throws -> [Float] {
        try validate(tokens: tokens, batch: batch, length: length)
        let V = config.vocabSize
        let cache = KVCache(config: config, B: batch, maxT: length)
        var out = [Float](repeating: 0, count: batch * length * V)
        for t in 0 ..< length {
            for b in 0 ..< batch { cache.tokens[b] = tokens[b * length + t] }
            decodeStep(cache, pos: t)
            for b in 0 ..< batch {
                for j in 0 ..< V { out[(b * length + t) * V + j] = cache.logits.p[b * V + j] }
            }
        }
        return out
    }
}
