import Foundation

/// Global-norm gradient clipping (Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent
/// neural networks", 2013; `torch.nn.utils.clip_grad_norm_`): with `n = ||g||_2` over ALL parameters,
/// `g *= maxNorm / (n + 1e-6)` when `n > maxNorm`.
public enum GradientClipping {
    /// Returns the pre-clipping global norm (accumulated in Double). A non-finite norm leaves `g` unchanged
    /// and is returned so the caller can skip the step.
    @discardableResult
    public static func clipGlobalNorm(_ gradients: inout [Float], maxNorm: Float) -> Float {
        var s = 0.0
        gradients.withUnsafeBufferPointer { gb in
            for x in gb { s += Double(x) * Double(x) }
        }
        let norm = Float(s.squareRoot())
        if norm.isFinite && maxNorm > 0 && norm > maxNorm {
            let scale = maxNorm / (norm + 1e-6)
            gradients.withUnsafeMutableBufferPointer { gb in
                for i in 0 ..< gb.count { gb[i] *= scale }
            }
        }
        return norm
    }
}
