import Foundation

/// Categorical entropy from logits, verl `entropy_from_logits`:
/// `H(z) = logsumexp(z) − Σ_v softmax(z)_v z_v` (= −Σ p log p, nats), computed stably after subtracting
/// the row maximum, in Double.
///
/// Reference: C. E. Shannon, "A Mathematical Theory of Communication" (1948) for the quantity; verl
/// (`verl.utils.torch_functional.entropy_from_logits`) for the formula used in RL post-training.
///
/// Backward: `∂H/∂z_v = −p_v (log p_v + H) = −p_v (z_v − E_p[z])`.
/// Logits are flat row-major `[rows][V]`.
public enum Entropy {
    static func check(_ logits: [Double], vocab: Int) throws -> Int {
        guard vocab >= 1 else { throw FineGrainError.invalidField(field: "logits", reason: "vocabulary size must be >= 1, got \(vocab)") }
        guard logits.count % vocab == 0 else {
            throw FineGrainError.invalidField(field: "logits", reason: "has \(logits.count) entries, not a multiple of the vocabulary size \(vocab)")
        }
        return logits.count / vocab
    }

    /// Per-row entropy `[rows]`.
    public static func fromLogits(_ logits: [Double], vocab: Int) throws -> [Double] {
        try forwardBackward(logits, vocab: vocab, upstream: nil, wantGradient: false).entropy
    }

    /// Entropy `[rows]` and `∂(Σ_r u_r H_r)/∂logits` `[rows·V]` (`u` = `upstream`, all ones when nil).
    public static func withGradient(_ logits: [Double], vocab: Int, upstream: [Double]? = nil) throws -> (entropy: [Double], gradient: [Double]) {
        let r = try forwardBackward(logits, vocab: vocab, upstream: upstream, wantGradient: true)
        return (r.entropy, r.gradient)
    }

    static func forwardBackward(_ logits: [Double], vocab: Int, upstream: [Double]?, wantGradient: Bool) throws -> (entropy: [Double], gradient: [Double]) {
        let rows = try check(logits, vocab: vocab)
        if let u = upstream, u.count != rows {
            throw FineGrainError.invalidField(field: "upstream", reason: "has \(u.count) entries for \(rows) rows")
        }
        var h = [Double](repeating: 0, count: rows)
        var g = [Double](repeating: 0, count: wantGradient ? logits.count : 0)
        logits.withUnsafeBufferPointer { zp in g.withUnsafeMutableBufferPointer { gp in
            for r in 0 ..< rows {
                let base = r &* vocab
                var m = -Double.infinity
                for v in 0 ..< vocab { m = Swift.max(m, zp[base &+ v]) }
                var s = 0.0, sz = 0.0
                for v in 0 ..< vocab {
                    let d = zp[base &+ v] - m
                    let e = Foundation.exp(d)
                    s += e; sz += e * d
                }
                let ez = sz / s   // E_p[z − m]
                h[r] = Foundation.log(s) - ez
                if wantGradient {
                    let u = upstream?[r] ?? 1
                    for v in 0 ..< vocab {
                        let d = zp[base &+ v] - m
                        let p = Foundation.exp(d) / s
                        gp[base &+ v] = -u * p * (d - ez)
                    }
                }
            }
        } }
        return (h, g)
    }
}
