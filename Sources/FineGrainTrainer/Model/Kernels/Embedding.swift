/// Token + position embedding (GPT-2, 2019): `out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]`.
/// Token ids must already be validated to lie in `0 ..< V` (the model does it and throws otherwise).
public enum Embedding {
    /// out [B, T, C]; tokens [B, T]; wte [V, C]; wpe [maxT, C].
    public static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                               wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        for b in 0 ..< B {
            for t in 0 ..< T {
                let o = out + (b &* T &+ t) &* C
                let e = wte + Int(tokens[b &* T &+ t]) &* C
                let p = wpe + t &* C
                for i in 0 ..< C { o[i] = e[i] + p[i] }
            }
        }
    }

    /// dwte [V, C] += scatter of dout by token; dwpe [maxT, C] += sum over the batch. dout [B, T, C].
    public static func backward(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>, B: Int, T: Int, C: Int) {
        for b in 0 ..< B {
            for t in 0 ..< T {
                let d = dout + (b &* T &+ t) &* C
                let e = dwte + Int(tokens[b &* T &+ t]) &* C
                let p = dwpe + t &* C
                for i in 0 ..< C { e[i] += d[i]; p[i] += d[i] }
            }
        }
    }
}
