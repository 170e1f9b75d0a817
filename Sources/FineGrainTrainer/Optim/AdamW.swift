import FineGrain
import Foundation

/// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019; Adam: Kingma & Ba 2015)
/// over a flat parameter buffer. At step `t = 1, 2, ...` with gradient `g` and learning rate `lr`:
///
///     m = b1 m + (1 - b1) g            v = b2 v + (1 - b2) g^2
///     mhat = m / (1 - b1^t)            vhat = v / (1 - b2^t)
///     theta -= lr * (mhat / (sqrt(vhat) + eps) + wd * theta)     (wd only where the tensor decays)
///
/// This equals PyTorch's `torch.optim.AdamW`. Weight decay is applied to the linear-layer matrices only;
/// LayerNorm gains and biases, all biases, and the (tied) token and position embeddings are not decayed,
/// as in nanoGPT / GPT-2 practice (decaying a gain pulls it towards 0, not towards the identity).
public final class AdamW: @unchecked Sendable {
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    /// First and second moments, parallel to the parameters.
    public var m: [Float]
    public var v: [Float]
    /// Number of updates taken so far (the `t` of the bias correction after the next update is `step + 1`).
    public var step: Int
    /// Per-parameter weight-decay factor (1 = decays, 0 = no decay).
    let decay: [Float]

    /// An optimiser for a model's layout: matrices decay, everything else does not.
    public convenience init(layout: ParameterLayout, beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8, weightDecay: Float = 0.1) throws {
        var mask = [Bool](repeating: false, count: layout.count)
        for t in layout.tensors where t.decays { for i in t.range { mask[i] = true } }
        try self.init(decays: mask, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
    }

    /// An optimiser over `decays.count` parameters; `decays[i]` says whether parameter `i` is decayed.
    public init(decays mask: [Bool], beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8, weightDecay: Float = 0.1) throws {
        for (name, value, lo, hi) in [("beta1", beta1, Float(0), Float(1)), ("beta2", beta2, 0, 1)] where !(value >= lo && value < hi) {
            throw FineGrainError.invalidParameter(name: name, method: "AdamW", reason: "must be in [0, 1), got \(value)")
        }
        if !(eps > 0) { throw FineGrainError.invalidParameter(name: "eps", method: "AdamW", reason: "must be > 0, got \(eps)") }
        if !(weightDecay >= 0) { throw FineGrainError.invalidParameter(name: "weightDecay", method: "AdamW", reason: "must be >= 0, got \(weightDecay)") }
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        m = [Float](repeating: 0, count: mask.count)
        v = m
        step = 0
        decay = mask.map { $0 ? 1 : 0 }
    }

    /// Applies one update in place with learning rate `learningRate`.
    public func update(parameters: inout [Float], gradients: [Float], learningRate: Float) throws {
        guard parameters.count == m.count else {
            throw FineGrainError.invalidField(field: "parameters", reason: "expected \(m.count) values, got \(parameters.count)")
        }
        guard gradients.count == m.count else {
            throw FineGrainError.invalidField(field: "gradients", reason: "expected \(m.count) values, got \(gradients.count)")
        }
        if !(learningRate >= 0) || !learningRate.isFinite {
            throw FineGrainError.invalidParameter(name: "learningRate", method: "AdamW", reason: "must be finite and >= 0, got \(learningRate)")
        }
        step += 1
        let t = Double(step)
        let c1 = Float(1 - pow(Double(beta1), t)), c2 = Float(1 - pow(Double(beta2), t))
        let b1 = beta1, b2 = beta2, e = eps, wd = weightDecay, lr = learningRate
        let n = m.count
        parameters.withUnsafeMutableBufferPointer { pb in
            gradients.withUnsafeBufferPointer { gb in
                m.withUnsafeMutableBufferPointer { mb in
                    v.withUnsafeMutableBufferPointer { vb in
                        decay.withUnsafeBufferPointer { db in
                            let p = pb.baseAddress!, g = gb.baseAddress!, mm = mb.baseAddress!, vv = vb.baseAddress!, d = db.baseAddress!
                            for i in 0 ..< n {
                                let gi = g[i]
                                let mi = b1 * mm[i] + (1 - b1) * gi
                                let vi = b2 * vv[i] + (1 - b2) * gi * gi
                                mm[i] = mi
                                vv[i] = vi
                                let mhat = mi / c1, vhat = vi / c2
                                p[i] -= lr * (mhat / (vhat.squareRoot() + e) + wd * d[i] * p[i])
                            }
                        }
                    }
                }
            }
        }
    }
}
