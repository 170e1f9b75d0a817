import Foundation

/// The plain reference versions of the attention core (llm.c style: scalar loops over the causal
/// triangle, the specification the fast kernels are tested against).
extension Attention {
    /// Reference forward (plain loops over the causal triangle); same contract as `forward`.
    public static func forwardReference(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                                        qkv: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int) {
        let hs = C / NH, C3 = 3 &* C
        let scale = 1 / Float(hs).squareRoot()
        Parallel.forEach(B &* NH, costPerItem: T &* T &* hs) { bh in
            let b = bh / NH, h = bh % NH
            let base = qkv + b &* T &* C3
            for t in 0 ..< T {
                let q = base + (t &* C3 &+ h &* hs)
                let a = att + ((bh &* T &+ t) &* T)
                var maxv = -Float.infinity
                for t2 in 0 ... t {
                    let k = base + (t2 &* C3 &+ C &+ h &* hs)
                    let s = dotProduct(q, k, hs) * scale
                    a[t2] = s
                    if s > maxv { maxv = s }
                }
                var sum: Float = 0
                for t2 in 0 ... t { let e = expf(a[t2] - maxv); a[t2] = e; sum += e }
                let inv = 1 / sum
                for t2 in 0 ... t { a[t2] *= inv }
                var t2 = t + 1
                while t2 < T { a[t2] = 0; t2 &+= 1 }
                let o = out + ((b &* T &+ t) &* C &+ h &* hs)
                for i in 0 ..< hs { o[i] = 0 }
                for t2 in 0 ... t { axpy(a[t2], base + (t2 &* C3 &+ 2 &* C &+ h &* hs), o, hs) }
            }
        }
    }

    /// Accumulates `dqkv [B, T, 3C]` from `dout [B, T, C]`:
    /// `dA = dY V^T`, `dV += A^T dY`, `dS = A * (dA - rowsum(A * dA))` (softmax backward),
    /// `dQ += dS K / sqrt(hs)`, `dK += dS^T Q / sqrt(hs)`.
    public static func backwardReference(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                         qkv: UnsafePointer<Float>, att: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int) {
        let hs = C / NH, C3 = 3 &* C
        let scale = 1 / Float(hs).squareRoot()
        Parallel.forEach(B &* NH, costPerItem: 2 &* T &* T &* hs) { bh in
            let b = bh / NH, h = bh % NH
            let base = qkv + b &* T &* C3
            let dbase = dqkv + b &* T &* C3
            withUnsafeTemporaryAllocation(of: Float.self, capacity: T) { tmp in
                let ds = tmp.baseAddress!
                for t in 0 ..< T {
                    let a = att + ((bh &* T &+ t) &* T)
                    let dy = dout + ((b &* T &+ t) &* C &+ h &* hs)
                    // dA[t2] = dy . v[t2]; dv[t2] += a[t2] * dy
                    var dot: Float = 0
                    for t2 in 0 ... t {
                        let v = base + (t2 &* C3 &+ 2 &* C &+ h &* hs)
                        let dv = dbase + (t2 &* C3 &+ 2 &* C &+ h &* hs)
                        let w = a[t2]
                        let s = dotProduct(dy, v, hs)
                        axpy(w, dy, dv, hs)
                        ds[t2] = s
                        dot += w * s
                    }
                    let q = base + (t &* C3 &+ h &* hs)
                    let dq = dbase + (t &* C3 &+ h &* hs)
                    for t2 in 0 ... t {
                        let g = a[t2] * (ds[t2] - dot) * scale
                        let k = base + (t2 &* C3 &+ C &+ h &* hs)
                        let dk = dbase + (t2 &* C3 &+ C &+ h &* hs)
                        axpy(g, k, dq, hs)
                        axpy(g, q, dk, hs)
                    }
                }
            }
        }
    }
}
