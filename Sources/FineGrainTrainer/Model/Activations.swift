/// A manually managed Float buffer: stable address, no copy-on-write, freed with its owner.
final class FloatBuffer {
    let count: Int
    let p: UnsafeMutablePointer<Float>
    init(_ count: Int) {
        self.count = count
        p = .allocate(capacity: Swift.max(1, count))
        p.initialize(repeating: 0, count: Swift.max(1, count))
    }
    deinit { p.deallocate() }
    func zero() { p.update(repeating: 0, count: count) }
}

/// Everything the forward pass keeps for backward, sized for one `(B, T)` (llm.c's ActivationTensors),
/// plus the scratch gradient buffers backward reuses. `L` = layers, `N = B*T`.
final class Activations {
    let B: Int, T: Int
    let encoded: FloatBuffer            // [N, C]
    let ln1, ln1Mean, ln1Rstd: FloatBuffer // [L, N, C], [L, N], [L, N]
    let qkv: FloatBuffer                // [L, N, 3C]
    let atty: FloatBuffer               // [L, N, C]
    let att: FloatBuffer                // [L, B, NH, T, T]
    let attProj: FloatBuffer            // [L, N, C]
    let residual2: FloatBuffer          // [L, N, C]
    let ln2, ln2Mean, ln2Rstd: FloatBuffer // [L, N, C], [L, N], [L, N]
    let fch, fchGelu: FloatBuffer       // [L, N, 4C]
    let fchTanh: FloatBuffer            // [L, N, 4C], tanh(u) of GELU for backward
    let fcProj: FloatBuffer             // [L, N, C]
    let residual3: FloatBuffer          // [L, N, C]
    let lnf, lnfMean, lnfRstd: FloatBuffer // [N, C], [N], [N]
    let logits: FloatBuffer             // [N, V]
    let tokens: UnsafeMutablePointer<Int32> // [N]
    // backward scratch
    let dLogits: FloatBuffer            // [N, V]
    let dResidual, dLn, dAtty: FloatBuffer // [N, C]
    let dQkv: FloatBuffer               // [N, 3C]
    let dFch, dFchGelu: FloatBuffer     // [N, 4C]
    let dLogprob, dEntropy: FloatBuffer // [N]
    let targets: UnsafeMutablePointer<Int32> // [N]
    /// Parameter-gradient buffers of batch shards 1... (`GPT.backwardFromStoredDLogits`), made on first use.
    var shardGradients: FloatBuffer?

    init(config: GPTConfig, B: Int, T: Int) {
        self.B = B
        self.T = T
        let L = config.nLayers, C = config.dModel, N = B * T, H = config.mlpHidden, V = config.vocabSize
        encoded = FloatBuffer(N * C)
        ln1 = FloatBuffer(L * N * C); ln1Mean = FloatBuffer(L * N); ln1Rstd = FloatBuffer(L * N)
        qkv = FloatBuffer(L * N * 3 * C)
        atty = FloatBuffer(L * N * C)
        att = FloatBuffer(L * B * config.nHeads * T * T)
        attProj = FloatBuffer(L * N * C)
        residual2 = FloatBuffer(L * N * C)
        ln2 = FloatBuffer(L * N * C); ln2Mean = FloatBuffer(L * N); ln2Rstd = FloatBuffer(L * N)
        fch = FloatBuffer(L * N * H); fchGelu = FloatBuffer(L * N * H); fchTanh = FloatBuffer(L * N * H)
        fcProj = FloatBuffer(L * N * C)
        residual3 = FloatBuffer(L * N * C)
        lnf = FloatBuffer(N * C); lnfMean = FloatBuffer(N); lnfRstd = FloatBuffer(N)
        logits = FloatBuffer(N * V)
        tokens = .allocate(capacity: N); tokens.initialize(repeating: 0, count: N)
        dLogits = FloatBuffer(N * V)
        dResidual = FloatBuffer(N * C); dLn = FloatBuffer(N * C); dAtty = FloatBuffer(N * C)
        dQkv = FloatBuffer(N * 3 * C)
        dFch = FloatBuffer(N * H); dFchGelu = FloatBuffer(N * H)
        dLogprob = FloatBuffer(N); dEntropy = FloatBuffer(N)
        targets = .allocate(capacity: N); targets.initialize(repeating: 0, count: N)
    }

    deinit {
        tokens.deallocate()
        targets.deallocate()
    }
}
