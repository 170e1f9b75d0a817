import FineGrain

extension ParameterLayout {
    /// GPT-2 initialisation from a seed (SplitMix64, Box-Muller normals): matrices and embeddings
    /// `N(0, 0.02^2)`, the two residual-output projections (`attn.proj`, `mlp.proj`) scaled by
    /// `1/sqrt(2 L)` (GPT-2, 2019, section 2.3), biases 0, LayerNorm gains 1.
    public func initialParameters(config: GPTConfig, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        var p = [Float](repeating: 0, count: count)
        let residualStd = 0.02 / (2.0 * Double(config.nLayers)).squareRoot()
        for view in tensors {
            if view.name.hasSuffix("ln_1.weight") || view.name.hasSuffix("ln_2.weight") || view.name == "ln_f.weight" {
                for i in view.range { p[i] = 1 }
            } else if view.name.hasSuffix(".bias") {
                continue
            } else {
                let std = view.name.hasSuffix("attn.proj.weight") || view.name.hasSuffix("mlp.proj.weight") ? residualStd : 0.02
                for i in view.range { p[i] = Float(std * rng.normal()) }
            }
        }
        return p
    }
}
