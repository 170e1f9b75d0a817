import CBLAS
import Foundation

/// Causal multi-head self-attention core (Vaswani et al., "Attention Is All You Need", 2017):
/// per head `A = softmax(Q K^T / sqrt(hs) + causal mask)`, `Y = A V`. Input is the fused projection
/// `qkv [B, T, 3C]` (q at columns `0..<C`, k at `C..<2C`, v at `2C..<3C`, head `h` at `h*hs..<(h+1)*hs`
/// inside each); output `out [B, T, C]` has the heads concatenated. The probabilities `att
/// [B, NH, T, T]` (zero above the diagonal) are kept for backward. Work is split over (batch, head)
/// pairs with `DispatchQueue.concurrentPerform`; different pairs touch disjoint memory.
public enum Attention {
    /// Forward with BLAS per (batch, head): `S = scale Q K^T` as one `[T, T]` sgemm (the strided head
    /// slices of `qkv` are read in place, ld = 3C), causal mask + row softmax in `att`, then `Y = A V`
    /// (sgemm into the head's columns of `out`, ld = C). Computes the full square and masks it: at these
    /// sizes one sgemm beats a loop over the triangle.
    public static func forward(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                               qkv: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int) {
        let hs = C / NH, C3 = 3 &* C
        let scale = 1 / Float(hs).squareRoot()
        let t32 = Int32(T), hs32 = Int32(hs), c32 = Int32(C), c332 = Int32(C3)
        Parallel.forEach(B &* NH, costPerItem: 2 &* T &* T &* hs) { bh in
            let b = bh / NH, h = bh % NH
            let q = qkv + (b &* T &* C3 &+ h &* hs), k = q + C, v = q + 2 &* C
            let a = att + bh &* T &* T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t32, t32, hs32, scale, q, c332, k, c332, 0, a, t32)
            for t in 0 ..< T {
                let row = a + t &* T
                var maxv = -Float.infinity
                for t2 in 0 ... t where row[t2] > maxv { maxv = row[t2] }
                var sum: Float = 0
                for t2 in 0 ... t { let e = expf(row[t2] - maxv); row[t2] = e; sum += e }
                let inv = 1 / sum
                for t2 in 0 ... t { row[t2] *= inv }
                var t2 = t &+ 1
                while t2 < T { row[t2] = 0; t2 &+= 1 }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t32, hs32, t32, 1, a, t32, v, c332, 0,
                        out + (b &* T &* C &+ h &* hs), c32)
        }
    }

    /// Backward with BLAS per (batch, head): `dA = dY V^T`, `dV += A^T dY`, `dS = A * (dA - rowsum(A * dA))`,
    /// `dQ += scale dS K`, `dK += scale dS^T Q` (four sgemms on strided head slices).
    public static func backward(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                qkv: UnsafePointer<Float>, att: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int) {
        let hs = C / NH, C3 = 3 &* C
        let scale = 1 / Float(hs).squareRoot()
        let t32 = Int32(T), hs32 = Int32(hs), c32 = Int32(C), c332 = Int32(C3)
        Parallel.forEach(B &* NH, costPerItem: 4 &* T &* T &* hs) { bh in
            let b = bh / NH, h = bh % NH
            let off = b &* T &* C3 &+ h &* hs
            let q = qkv + off, k = q + C, v = q + 2 &* C
            let dq = dqkv + off, dk = dq + C, dv = dq + 2 &* C
            let dy = dout + (b &* T &* C &+ h &* hs)
            let a = att + bh &* T &* T
            withUnsafeTemporaryAllocation(of: Float.self, capacity: T &* T) { tmp in
                let ds = tmp.baseAddress!
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t32, t32, hs32, 1, dy, c32, v, c332, 0, ds, t32)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t32, hs32, t32, 1, a, t32, dy, c32, 1, dv, c332)
                for t in 0 ..< T {
                    let ar = a + t &* T, dr = ds + t &* T
                    var dot: Float = 0
                    for t2 in 0 ... t { dot += ar[t2] * dr[t2] }
                    for t2 in 0 ... t { dr[t2] = ar[t2] * (dr[t2] - dot) }
                    var t2 = t &+ 1
                    while t2 < T { dr[t2] = 0; t2 &+= 1 }
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t32, hs32, t32, scale, ds, t32, k, c332, 1, dq, c332)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t32, hs32, t32, scale, ds, t32, q, c332, 1, dk, c332)
            }
        }
    }

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

    /// One decoding step against a KV cache: for each row `b`, the new token at position `pos` has its
    /// q, k, v in `qkv [B, 3C]`; k and v are written to the caches `[B, NH, maxT, hs]` at `pos`, and
    /// `out [B, C]` receives `softmax(q K[0...pos]^T / sqrt(hs)) V[0...pos]`. `scratch` holds >= B*NH*maxT.
    public static func forwardStep(out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
                                   kCache: UnsafeMutablePointer<Float>, vCache: UnsafeMutablePointer<Float>,
                                   scratch: UnsafeMutablePointer<Float>, B: Int, pos: Int, maxT: Int, C: Int, NH: Int) {
        let hs = C / NH, C3 = 3 &* C
        let scale = 1 / Float(hs).squareRoot()
        Parallel.forEach(B &* NH, costPerItem: 2 &* (pos &+ 1) &* hs) { bh in
            let b = bh / NH, h = bh % NH
            let q = qkv + (b &* C3 &+ h &* hs)
            let kc = kCache + bh &* maxT &* hs, vc = vCache + bh &* maxT &* hs
            let kNew = q + C, vNew = q + 2 &* C
            for i in 0 ..< hs { kc[pos &* hs &+ i] = kNew[i]; vc[pos &* hs &+ i] = vNew[i] }
            let a = scratch + bh &* maxT
            var maxv = -Float.infinity
            for t2 in 0 ... pos {
                let k = kc + t2 &* hs
                let s = dotProduct(q, k, hs) * scale
                a[t2] = s
                if s > maxv { maxv = s }
            }
            var sum: Float = 0
            for t2 in 0 ... pos { let e = expf(a[t2] - maxv); a[t2] = e; sum += e }
            let inv = 1 / sum
            let o = out + (b &* C &+ h &* hs)
            for i in 0 ..< hs { o[i] = 0 }
            for t2 in 0 ... pos { axpy(a[t2] * inv, vc + t2 &* hs, o, hs) }
        }
    }
}
