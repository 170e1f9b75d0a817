import CBLAS
import Foundation

/// Causal multi-head self-attention core (Vaswani et al., "Attention Is All You Need", 2017):
/// per head `A = softmax(Q K^T / sqrt(hs) + causal mask)`, `Y = A V`. Input is the fused projection
/// `qkv [B, T, 3C]` (q at columns `0..<C`, k at `C..<2C`, v at `2C..<3C`, head `h` at `h*hs..<(h+1)*hs`
/// inside each); output `out [B, T, C]` has the heads concatenated. The probabilities `att
/// [B, NH, T, T]` (zero above the diagonal) are kept for backward. Work is split over (batch, head)
/// pairs (`Parallel.forEach`); different pairs touch disjoint memory. Three implementations of one
/// contract: the triangle kernel (AttentionTriangle.swift, what the model runs when OpenBLAS has only SSE kernels), per-head
/// sgemms (`forwardBLAS` / `backwardBLAS`, long sequences) and the scalar reference (AttentionReference.swift).
public enum Attention {
    /// Longest sequence for which `forward` / `backward` take the triangle kernel (`forwardTriangle`,
    /// `backwardTriangle`); past it they use the per-(batch, head) sgemms. On one core, d = 64, 4 heads
    /// (`ModelBenchmark.attentionKernels`, `bench --model --layers`) the kernel was 1.4-2.6x faster than the
    /// sgemms at every length measured, T = 64 ... 512 (it does half the flops, but its backward scratch
    /// grows as T^2 and OpenBLAS's kernel overhead amortises with T), so the bound is where measurements end.
    public static let triangleMaxLength = 512

    /// Whether `forward` / `backward` take the triangle kernel (for shapes it handles) rather than per-head
    /// sgemms. Default: true only when OpenBLAS runs SSE-only kernels (`BLASKernels.isWeak`, e.g. the SSE3
    /// "Prescott" family 0.3.21 picks on CPUs it does not know, where the triangle kernel is ~2x faster).
    /// With AVX2 or AVX-512 sgemm kernels the 64x64x16 sgemms win (on one core, 8 rows x 4 heads, T = 64:
    /// SkylakeX kernels BLAS 0.47 / 0.19 ms forward / backward vs triangle 0.38 / 0.45 on a Cooperlake VM;
    /// Haswell kernels on an AMD EPYC VM BLAS 0.26 / 0.33 vs 0.35 / 0.35, and BLAS in 0.70-0.78x of the
    /// triangle kernel's time at T = 128 ... 512).
    /// In a CPU-specific build (`FINEGRAIN_TARGET_CPU=native`, which defines FINEGRAIN_CPU_SPECIFIC) the
    /// triangle kernel's `SIMD16` lanes become native vectors and it wins again: on an AMD EPYC VM with AVX-512
    /// codegen, BLAS (Haswell kernels) took 1.16x / 1.15x / 1.08x / 1.07x / 1.01x the triangle's time at
    /// T = 64 / 128 / 256 / 384 / 512, so that build takes the triangle whatever the BLAS core.
    /// Fixed per process by the build and the BLAS core, so results do not change from run to run or with
    /// the thread count; settable for tests and benchmarks.
    nonisolated(unsafe) public static var preferTriangle: Bool = cpuSpecificBuild || BLASKernels.isWeak(BLASKernels.coreName)

    /// Whether this module was compiled for the build machine's CPU (`FINEGRAIN_TARGET_CPU`).
    #if FINEGRAIN_CPU_SPECIFIC
    public static let cpuSpecificBuild = true
    #else
    public static let cpuSpecificBuild = false
    #endif

    /// Whether `forward` / `backward` use the triangle kernel for this shape (else the BLAS path).
    @inline(__always)
    public static func usesTriangle(T: Int, C: Int, NH: Int) -> Bool {
        preferTriangle && T <= triangleMaxLength && C / NH <= triangleMaxHeadSize
    }

    /// Causal attention forward: `att [B, NH, T, T]` = the causal softmax of `Q K^T / sqrt(hs)` (zero above
    /// the diagonal), `out [B, T, C]` = the heads' `att V`, concatenated. Dispatches to `forwardTriangle`
    /// (short sequences, head size <= 32) or `forwardBLAS`.
    public static func forward(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                               qkv: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int) {
        if usesTriangle(T: T, C: C, NH: NH) {
            forwardTriangle(out: out, att: att, qkv: qkv, B: B, T: T, C: C, NH: NH)
        } else {
            forwardBLAS(out: out, att: att, qkv: qkv, B: B, T: T, C: C, NH: NH)
        }
    }

    /// Causal attention backward: `dqkv`'s head slices get (or, with `accumulate`, add) `dQ`, `dK`, `dV`
    /// from `dout [B, T, C]` and the forward's `att`. Dispatches like `forward`.
    public static func backward(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                qkv: UnsafePointer<Float>, att: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int,
                                accumulate: Bool = true) {
        if usesTriangle(T: T, C: C, NH: NH) {
            backwardTriangle(dqkv: dqkv, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH, accumulate: accumulate)
        } else {
            backwardBLAS(dqkv: dqkv, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH, accumulate: accumulate)
        }
    }

    /// Forward with BLAS per (batch, head): `S = scale Q K^T` as one `[T, T]` sgemm (the strided head
    /// slices of `qkv` are read in place, ld = 3C), causal mask + row softmax in `att`, then `Y = A V`
    /// (sgemm into the head's columns of `out`, ld = C). Computes the full square and masks it; the fallback
    /// for long sequences (past `triangleMaxLength`) and head sizes over 32. The softmax runs eight lanes at a
    /// time (`causalSoftmaxRow`).
    public static func forwardBLAS(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                                   qkv: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int) {
        let hs = C / NH, C3 = 3 &* C
        let scale = 1 / Float(hs).squareRoot()
        let t32 = Int32(T), hs32 = Int32(hs), c32 = Int32(C), c332 = Int32(C3)
        Parallel.forEach(B &* NH, costPerItem: 2 &* T &* T &* hs) { bh in
            let b = bh / NH, h = bh % NH
            let q = qkv + (b &* T &* C3 &+ h &* hs), k = q + C, v = q + 2 &* C
            let a = att + bh &* T &* T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t32, t32, hs32, scale, q, c332, k, c332, 0, a, t32)
            for t in 0 ..< T { causalSoftmaxRow(a + t &* T, t: t, T: T) }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t32, hs32, t32, 1, a, t32, v, c332, 0,
                        out + (b &* T &* C &+ h &* hs), c32)
        }
    }

    /// Backward with BLAS per (batch, head): `dA = dY V^T`, `dV += A^T dY`, `dS = A * (dA - rowsum(A * dA))`,
    /// `dQ += scale dS K`, `dK += scale dS^T Q` (four sgemms on strided head slices). With
    /// `accumulate: false` the head slices of `dqkv` are overwritten instead (no zeroing needed).
    public static func backwardBLAS(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                    qkv: UnsafePointer<Float>, att: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int,
                                    accumulate: Bool = true) {
        let hs = C / NH, C3 = 3 &* C
        let scale = 1 / Float(hs).squareRoot()
        let t32 = Int32(T), hs32 = Int32(hs), c32 = Int32(C), c332 = Int32(C3)
        let beta: Float = accumulate ? 1 : 0
        Parallel.forEach(B &* NH, costPerItem: 4 &* T &* T &* hs) { bh in
            let s = HeadSlices(bh, qkv: qkv, dqkv: dqkv, dout: dout, att: att, T: T, C: C, NH: NH)
            let (q, k, v, dq, dk, dv, dy, a) = (s.q, s.k, s.v, s.dq, s.dk, s.dv, s.dy, s.a)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: T &* T) { tmp in
                let ds = tmp.baseAddress!
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t32, t32, hs32, 1, dy, c32, v, c332, 0, ds, t32)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t32, hs32, t32, 1, a, t32, dy, c32, beta, dv, c332)
                for t in 0 ..< T { causalSoftmaxBackwardRow(ds + t &* T, a + t &* T, t: t, T: T) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t32, hs32, t32, scale, ds, t32, k, c332, beta, dq, c332)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t32, hs32, t32, scale, ds, t32, q, c332, beta, dk, c332)
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

/// One (batch, head) pair's slices for the backward passes: q, k, v and their gradients inside the fused
/// `[B, T, 3C]` buffers (row stride 3C, head `h` at columns `h*hs ..< (h+1)*hs` of each third), the output
/// gradient in `[B, T, C]` and the pair's `[T, T]` probabilities.
struct HeadSlices {
    let q, k, v: UnsafePointer<Float>
    let dq, dk, dv: UnsafeMutablePointer<Float>
    let dy, a: UnsafePointer<Float>

    @inline(__always)
    init(_ bh: Int, qkv: UnsafePointer<Float>, dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
         att: UnsafePointer<Float>, T: Int, C: Int, NH: Int) {
        let b = bh / NH, h = bh % NH, hs = C / NH
        let off = b &* T &* 3 &* C &+ h &* hs
        (q, k, v) = (qkv + off, qkv + (off &+ C), qkv + (off &+ 2 &* C))
        (dq, dk, dv) = (dqkv + off, dqkv + (off &+ C), dqkv + (off &+ 2 &* C))
        dy = dout + (b &* T &* C &+ h &* hs)
        a = att + bh &* T &* T
    }
}

extension Attention {
    /// Row `t` of the causal softmax in place: `row[0...t] = softmax(row[0...t])`, `row[t+1 ..< T] = 0`.
    /// Eight lanes at a time (`exp8`), the last partial block masked; scalar only for a tail that would run
    /// past `T` (when `T` is not a multiple of 8).
    @inline(__always)
    static func causalSoftmaxRow(_ row: UnsafeMutablePointer<Float>, t: Int, T: Int) {
        let r = UnsafeMutableRawPointer(row)
        let n = t &+ 1
        let simdEnd = Swift.min(T, (n &+ 7) & ~7) & ~7 // blocks [0, simdEnd) are loaded as SIMD8
        // the block holding the diagonal: lanes past t masked via `laneMasks` (a lane compare against a
        // broadcast position would be built lane by lane through memory)
        let masks = UnsafeRawPointer(laneMasks), dead = ((8 &- (n & 7)) & 7) &* 4
        let keep = masks.loadUnaligned(fromByteOffset: dead, as: SIMD8<Float>.self)
        let minf = masks.loadUnaligned(fromByteOffset: 64 &+ dead, as: SIMD8<Float>.self)
        var mx = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j < simdEnd {
            var v = r.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self)
            if j &+ 8 > n { v += minf }
            mx.replace(with: v, where: v .> mx)
            j &+= 8
        }
        var m = mx.max()
        var k = simdEnd
        while k < n { m = Swift.max(m, row[k]); k &+= 1 }
        let mv = SIMD8<Float>(repeating: m)
        var sv = SIMD8<Float>()
        j = 0
        while j < simdEnd {
            var e = exp8(r.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) - mv)
            if j &+ 8 > n { e *= keep }
            r.storeBytes(of: e, toByteOffset: j &* 4, as: SIMD8<Float>.self)
            sv += e
            j &+= 8
        }
        var sum = sv.sum()
        k = simdEnd
        while k < n { let e = expf(row[k] - m); row[k] = e; sum += e; k &+= 1 }
        let inv = 1 / sum
        let iv = SIMD8<Float>(repeating: inv)
        j = 0
        while j < simdEnd {
            r.storeBytes(of: r.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) * iv, toByteOffset: j &* 4, as: SIMD8<Float>.self)
            j &+= 8
        }
        k = simdEnd
        while k < n { row[k] *= inv; k &+= 1 }
        k = Swift.max(k, n)
        if k < T { (row + k).update(repeating: 0, count: T &- k) }
    }

    /// Row `t` of the softmax backward in place: `d[j] = a[j] (d[j] - sum_i a[i] d[i])`. `a` is zero past
    /// the diagonal, so only the blocks of eight up to `t` are computed and the rest of the row is zeroed
    /// (the same values as the full-row formula, bit for bit: the skipped products are all zero).
    @inline(__always)
    static func causalSoftmaxBackwardRow(_ d: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, t: Int, T: Int) {
        let rd = UnsafeMutableRawPointer(d), ra = UnsafeRawPointer(a)
        let end = Swift.min(T, (t &+ 8) & ~7) // the first block boundary past the diagonal
        var acc = SIMD8<Float>()
        var j = 0
        while j &+ 8 <= end {
            acc += ra.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) * rd.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self)
            j &+= 8
        }
        var dot = acc.sum()
        var k = j
        while k < end { dot += a[k] * d[k]; k &+= 1 }
        let dv = SIMD8<Float>(repeating: dot)
        j = 0
        while j &+ 8 <= end {
            let av = ra.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self)
            rd.storeBytes(of: av * (rd.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) - dv), toByteOffset: j &* 4, as: SIMD8<Float>.self)
            j &+= 8
        }
        while j < end { d[j] = a[j] * (d[j] - dot); j &+= 1 }
        if end < T { (d + end).update(repeating: 0, count: T &- end) }
    }
}
