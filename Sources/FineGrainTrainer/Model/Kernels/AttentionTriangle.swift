/// The hand-written causal attention kernel: one (batch, head) pair at a time, only the causal triangle
/// (`j <= i`), no BLAS. The head's slices are first copied into small contiguous scratch buffers on the
/// stack: K (forward) or V (backward) transposed to `[hs, Tp]` (`Tp` = T rounded up to 8, zero padded) so
/// a score row `S[i, j..<j+8]` is eight lanes of `sum_d q[i,d] kT[d, j..<j+8]`; the other operands as
/// `[T, hp]` rows with the head dimension zero padded to `hp` lanes (4, 8, 16 or 32, one `AttentionLanes`
/// vector), so `Y[i] += P[i,j] V[j]` and friends are one vector multiply-add per (i, j) pair.
extension Attention {
    /// Largest head size the triangle kernel takes (its widest lane vector is `SIMD32<Float>`).
    public static let triangleMaxHeadSize = 32

    /// Forward on the causal triangle, the same contract as `forward`: `att [B, NH, T, T]` gets the
    /// probabilities (zero above the diagonal), `out [B, T, C]` the heads' `P V`. Scores, scale, causal
    /// softmax and `P V` are fused in one pass per query row. Needs `C / NH <= triangleMaxHeadSize`.
    public static func forwardTriangle(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                                       qkv: UnsafePointer<Float>, B: Int, T: Int, C: Int, NH: Int) {
        let hs = C / NH
        precondition(hs >= 1 && hs <= triangleMaxHeadSize, "triangle attention needs 1 <= head size <= 32")
        switch hs {
        case ...4: forwardTriangle(SIMD4<Float>.self, out, att, qkv, B, T, C, NH)
        case ...8: forwardTriangle(SIMD8<Float>.self, out, att, qkv, B, T, C, NH)
        case ...16: forwardTriangle(SIMD16<Float>.self, out, att, qkv, B, T, C, NH)
        default: forwardTriangle(SIMD32<Float>.self, out, att, qkv, B, T, C, NH)
        }
    }

    /// Backward on the causal triangle, the same contract as `backward`: from `dout [B, T, C]` and the
    /// forward's `att`, `dQ = scale dS K`, `dK = scale dS^T Q`, `dV = P^T dY` with
    /// `dS = P * (dP - rowsum(P * dP))`, `dP = dY V^T`, written into (or, with `accumulate`, added to) the
    /// head slices of `dqkv [B, T, 3C]`. Row pass: `dP`, `dS` and `dQ[i]`; column pass: `dK[j]`, `dV[j]`
    /// summed over `i >= j` in registers. Needs `C / NH <= triangleMaxHeadSize`.
    public static func backwardTriangle(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                        qkv: UnsafePointer<Float>, att: UnsafePointer<Float>,
                                        B: Int, T: Int, C: Int, NH: Int, accumulate: Bool = true) {
        let hs = C / NH
        precondition(hs >= 1 && hs <= triangleMaxHeadSize, "triangle attention needs 1 <= head size <= 32")
        switch hs {
        case ...4: backwardTriangle(SIMD4<Float>.self, dqkv, dout, qkv, att, B, T, C, NH, accumulate)
        case ...8: backwardTriangle(SIMD8<Float>.self, dqkv, dout, qkv, att, B, T, C, NH, accumulate)
        case ...16: backwardTriangle(SIMD16<Float>.self, dqkv, dout, qkv, att, B, T, C, NH, accumulate)
        default: backwardTriangle(SIMD32<Float>.self, dqkv, dout, qkv, att, B, T, C, NH, accumulate)
        }
    }

    /// `forwardTriangle` with the head padded to `V.scalarCount` lanes (one (batch, head) pair per item).
    @inline(__always)
    static func forwardTriangle<V: AttentionLanes>(_: V.Type, _ out: UnsafeMutablePointer<Float>,
                                                   _ att: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>,
                                                   _ B: Int, _ T: Int, _ C: Int, _ NH: Int) {
        let hs = C / NH, C3 = 3 &* C, hp = V.scalarCount, Tp = (T &+ 7) & ~7
        let scale = 1 / Float(hs).squareRoot()
        Parallel.forEach(B &* NH, costPerItem: T &* T &* hs) { bh in
            let b = bh / NH, h = bh % NH
            let q = qkv + (b &* T &* C3 &+ h &* hs), k = q + C, v = q + 2 &* C
            let a = att + bh &* T &* T
            withUnsafeTemporaryAllocation(of: Float.self, capacity: hs &* Tp &+ T &* hp &+ 2 &* Tp) { buf in
                let kT = buf.baseAddress!, vP = kT + hs &* Tp, srow = vP + T &* hp, srow1 = srow + Tp
                transposeHead(kT, k, T: T, Tp: Tp, hs: hs, stride: C3)
                padHead(vP, v, T: T, hs: hs, hp: hp, stride: C3)
                let rv = UnsafeRawPointer(vP)
                // two query rows at a time: they share the loads of kT (scores) and of V (P V)
                var i = 0
                while i < T {
                    let pair = i &+ 1 < T
                    let blocks = ((pair ? i &+ 1 : i) &+ 8) >> 3
                    if pair {
                        scoreRows2(srow, srow1, q + i &* C3, q + (i &+ 1) &* C3, kT, blocks: blocks, Tp: Tp, hs: hs, scale: scale)
                        softmaxBlocks(srow, n: i &+ 1)
                        softmaxBlocks(srow1, n: i &+ 2)
                        // Y[i] = sum_{j <= i} P[i, j] V[j], Y[i+1] likewise with one more term
                        var y0 = V(), y1 = V()
                        for j in 0 ... i {
                            let vj = rv.loadUnaligned(fromByteOffset: j &* hp &* 4, as: V.self)
                            y0 = V.madd(y0, srow[j], vj)
                            y1 = V.madd(y1, srow1[j], vj)
                        }
                        y1 = V.madd(y1, srow1[i &+ 1], rv.loadUnaligned(fromByteOffset: (i &+ 1) &* hp &* 4, as: V.self))
                        storeHead(out + ((b &* T &+ i) &* C &+ h &* hs), y0, hs: hs, accumulate: false)
                        storeHead(out + ((b &* T &+ i &+ 1) &* C &+ h &* hs), y1, hs: hs, accumulate: false)
                        storeProbabilityRow(a + i &* T, srow, i: i, T: T)
                        storeProbabilityRow(a + (i &+ 1) &* T, srow1, i: i &+ 1, T: T)
                    } else {
                        scoreRow(srow, q + i &* C3, kT, blocks: blocks, Tp: Tp, hs: hs, scale: scale)
                        softmaxBlocks(srow, n: i &+ 1)
                        var y0 = V(), y1 = V()
                        var j = 0
                        while j &+ 2 <= i &+ 1 {
                            y0 = V.madd(y0, srow[j], rv.loadUnaligned(fromByteOffset: j &* hp &* 4, as: V.self))
                            y1 = V.madd(y1, srow[j &+ 1], rv.loadUnaligned(fromByteOffset: (j &+ 1) &* hp &* 4, as: V.self))
                            j &+= 2
                        }
                        if j <= i { y0 = V.madd(y0, srow[j], rv.loadUnaligned(fromByteOffset: j &* hp &* 4, as: V.self)) }
                        storeHead(out + ((b &* T &+ i) &* C &+ h &* hs), V.add(y0, y1), hs: hs, accumulate: false)
                        storeProbabilityRow(a + i &* T, srow, i: i, T: T)
                    }
                    i &+= 2
                }
            }
        }
    }

    /// `backwardTriangle` with the head padded to `V.scalarCount` lanes (one (batch, head) pair per item).
    @inline(__always)
    static func backwardTriangle<V: AttentionLanes>(_: V.Type, _ dqkv: UnsafeMutablePointer<Float>,
                                                    _ dout: UnsafePointer<Float>, _ qkv: UnsafePointer<Float>,
                                                    _ att: UnsafePointer<Float>, _ B: Int, _ T: Int, _ C: Int, _ NH: Int,
                                                    _ accumulate: Bool) {
        let hs = C / NH, C3 = 3 &* C, hp = V.scalarCount, Tp = (T &+ 7) & ~7
        let scale = 1 / Float(hs).squareRoot()
        Parallel.forEach(B &* NH, costPerItem: 2 &* T &* T &* hs) { bh in
            let s = HeadSlices(bh, qkv: qkv, dqkv: dqkv, dout: dout, att: att, T: T, C: C, NH: NH)
            let (q, k, v, dq, dk, dv, dy, a) = (s.q, s.k, s.v, s.dq, s.dk, s.dv, s.dy, s.a)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: hs &* Tp &+ 3 &* T &* hp &+ T &* Tp) { buf in
                let vT = buf.baseAddress!, kP = vT + hs &* Tp, qP = kP + T &* hp, dyP = qP + T &* hp, dS = dyP + T &* hp
                transposeHead(vT, v, T: T, Tp: Tp, hs: hs, stride: C3)
                padHead(kP, k, T: T, hs: hs, hp: hp, stride: C3)
                padHead(qP, q, T: T, hs: hs, hp: hp, stride: C3)
                padHead(dyP, dy, T: T, hs: hs, hp: hp, stride: C)
                let rk = UnsafeRawPointer(kP), rq = UnsafeRawPointer(qP), rdy = UnsafeRawPointer(dyP)
                // rows: dP[i, j] = dY[i] . V[j], dS[i, j] = scale P (dP - rowsum(P dP)), dQ[i] = sum_j dS[i, j] K[j]
                // (two rows at a time, sharing the loads of vT and K; a row's dS past its diagonal is never read)
                var i = 0
                while i < T {
                    let ds = dS + i &* Tp
                    if i &+ 1 < T {
                        let ds1 = ds + Tp, blocks1 = (i &+ 9) >> 3
                        scoreRows2(ds, ds1, dy + i &* C, dy + (i &+ 1) &* C, vT, blocks: blocks1, Tp: Tp, hs: hs, scale: 1)
                        softmaxBackwardBlocks(ds, a + i &* T, blocks: (i &+ 8) >> 3, T: T, scale: scale)
                        softmaxBackwardBlocks(ds1, a + (i &+ 1) &* T, blocks: blocks1, T: T, scale: scale)
                        var g0 = V(), g1 = V()
                        for j in 0 ... i {
                            let kj = rk.loadUnaligned(fromByteOffset: j &* hp &* 4, as: V.self)
                            g0 = V.madd(g0, ds[j], kj)
                            g1 = V.madd(g1, ds1[j], kj)
                        }
                        g1 = V.madd(g1, ds1[i &+ 1], rk.loadUnaligned(fromByteOffset: (i &+ 1) &* hp &* 4, as: V.self))
                        storeHead(dq + i &* C3, g0, hs: hs, accumulate: accumulate)
                        storeHead(dq + (i &+ 1) &* C3, g1, hs: hs, accumulate: accumulate)
                    } else {
                        let blocks = (i &+ 8) >> 3
                        scoreRow(ds, dy + i &* C, vT, blocks: blocks, Tp: Tp, hs: hs, scale: 1)
                        softmaxBackwardBlocks(ds, a + i &* T, blocks: blocks, T: T, scale: scale)
                        var g0 = V(), g1 = V()
                        var j = 0
                        while j &+ 2 <= i &+ 1 {
                            g0 = V.madd(g0, ds[j], rk.loadUnaligned(fromByteOffset: j &* hp &* 4, as: V.self))
                            g1 = V.madd(g1, ds[j &+ 1], rk.loadUnaligned(fromByteOffset: (j &+ 1) &* hp &* 4, as: V.self))
                            j &+= 2
                        }
                        if j <= i { g0 = V.madd(g0, ds[j], rk.loadUnaligned(fromByteOffset: j &* hp &* 4, as: V.self)) }
                        storeHead(dq + i &* C3, V.add(g0, g1), hs: hs, accumulate: accumulate)
                    }
                    i &+= 2
                }
                // columns: dK[j] = sum_{i >= j} dS[i, j] Q[i], dV[j] = sum_{i >= j} P[i, j] dY[i]
                for j in 0 ..< T {
                    var gk = V(), gv = V()
                    var i = j
                    while i < T {
                        gk = V.madd(gk, dS[i &* Tp &+ j], rq.loadUnaligned(fromByteOffset: i &* hp &* 4, as: V.self))
                        gv = V.madd(gv, a[i &* T &+ j], rdy.loadUnaligned(fromByteOffset: i &* hp &* 4, as: V.self))
                        i &+= 1
                    }
                    storeHead(dk + j &* C3, gk, hs: hs, accumulate: accumulate)
                    storeHead(dv + j &* C3, gv, hs: hs, accumulate: accumulate)
                }
            }
        }
    }

    /// `row[j] = scale * sum_d x[d] m[d, j]` for `j < 8 * blocks` (`m` is `[hs, Tp]`), two blocks of eight
    /// lanes per pass over `d`.
    @inline(__always)
    static func scoreRow(_ row: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ m: UnsafePointer<Float>,
                         blocks: Int, Tp: Int, hs: Int, scale: Float) {
        let rm = UnsafeRawPointer(m), rr = UnsafeMutableRawPointer(row)
        let sv = SIMD8<Float>(repeating: scale), stride = Tp &* 4
        var blk = 0
        while blk &+ 2 <= blocks {
            var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
            var o = blk &* 32
            for d in 0 ..< hs {
                let xd = SIMD8<Float>(repeating: x[d])
                s0 += xd * rm.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                s1 += xd * rm.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self)
                o &+= stride
            }
            rr.storeBytes(of: s0 * sv, toByteOffset: blk &* 32, as: SIMD8<Float>.self)
            rr.storeBytes(of: s1 * sv, toByteOffset: blk &* 32 &+ 32, as: SIMD8<Float>.self)
            blk &+= 2
        }
        if blk < blocks {
            var s0 = SIMD8<Float>()
            var o = blk &* 32
            for d in 0 ..< hs {
                s0 += SIMD8<Float>(repeating: x[d]) * rm.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                o &+= stride
            }
            rr.storeBytes(of: s0 * sv, toByteOffset: blk &* 32, as: SIMD8<Float>.self)
        }
    }

    /// `a[0 ..< T]` = probability row `i` from `row` (exact, zeros past `i`, over its `ceil((i+1)/8)` blocks),
    /// zero past those blocks.
    @inline(__always)
    static func storeProbabilityRow(_ a: UnsafeMutablePointer<Float>, _ row: UnsafePointer<Float>, i: Int, T: Int) {
        let ra = UnsafeMutableRawPointer(a), rs = UnsafeRawPointer(row)
        let filled = Swift.min(T, ((i &+ 8) >> 3) << 3)
        var c = 0
        while c &+ 8 <= filled {
            ra.storeBytes(of: rs.loadUnaligned(fromByteOffset: c &* 4, as: SIMD8<Float>.self), toByteOffset: c &* 4, as: SIMD8<Float>.self)
            c &+= 8
        }
        while c < filled { a[c] = row[c]; c &+= 1 }
        if c < T { (a + c).update(repeating: 0, count: T &- c) }
    }

    /// `scoreRow` for two rows `x0`, `x1` at once (`r0`, `r1` get `blocks` blocks each), sharing the loads of `m`.
    @inline(__always)
    static func scoreRows2(_ r0: UnsafeMutablePointer<Float>, _ r1: UnsafeMutablePointer<Float>,
                           _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ m: UnsafePointer<Float>,
                           blocks: Int, Tp: Int, hs: Int, scale: Float) {
        let rm = UnsafeRawPointer(m), w0 = UnsafeMutableRawPointer(r0), w1 = UnsafeMutableRawPointer(r1)
        let sv = SIMD8<Float>(repeating: scale), stride = Tp &* 4
        var blk = 0
        while blk &+ 2 <= blocks {
            var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
            var o = blk &* 32
            for d in 0 ..< hs {
                let p = SIMD8<Float>(repeating: x0[d]), r = SIMD8<Float>(repeating: x1[d])
                let m0 = rm.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                let m1 = rm.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self)
                a00 += p * m0; a01 += p * m1; a10 += r * m0; a11 += r * m1
                o &+= stride
            }
            w0.storeBytes(of: a00 * sv, toByteOffset: blk &* 32, as: SIMD8<Float>.self)
            w0.storeBytes(of: a01 * sv, toByteOffset: blk &* 32 &+ 32, as: SIMD8<Float>.self)
            w1.storeBytes(of: a10 * sv, toByteOffset: blk &* 32, as: SIMD8<Float>.self)
            w1.storeBytes(of: a11 * sv, toByteOffset: blk &* 32 &+ 32, as: SIMD8<Float>.self)
            blk &+= 2
        }
        if blk < blocks {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
            var o = blk &* 32
            for d in 0 ..< hs {
                let m0 = rm.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                a0 += SIMD8<Float>(repeating: x0[d]) * m0
                a1 += SIMD8<Float>(repeating: x1[d]) * m0
                o &+= stride
            }
            w0.storeBytes(of: a0 * sv, toByteOffset: blk &* 32, as: SIMD8<Float>.self)
            w1.storeBytes(of: a1 * sv, toByteOffset: blk &* 32, as: SIMD8<Float>.self)
        }
    }

    /// In place over the `ceil(n / 8)` blocks of `row`: `row[0 ..< n] = softmax(row[0 ..< n])`, the rest of
    /// the last block zero. The last block's lanes past `n` are masked arithmetically with `laneMasks`
    /// (a `.>=` lane compare would go lane by lane through memory).
    @inline(__always)
    static func softmaxBlocks(_ row: UnsafeMutablePointer<Float>, n: Int) {
        let r = UnsafeMutableRawPointer(row), masks = UnsafeRawPointer(laneMasks)
        let blocks = (n &+ 7) >> 3, last = (blocks &- 1) &* 32
        let dead = (blocks &* 8 &- n) &* 4 // byte offset into the mask tables: 0 ... 28
        let keep = masks.loadUnaligned(fromByteOffset: dead, as: SIMD8<Float>.self)             // 1 for lanes < n
        let minf = masks.loadUnaligned(fromByteOffset: 64 &+ dead, as: SIMD8<Float>.self)       // -inf for lanes >= n
        var mx = r.loadUnaligned(fromByteOffset: last, as: SIMD8<Float>.self) + minf
        var o = 0
        while o < last {
            let x = r.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            mx.replace(with: x, where: x .> mx)
            o &+= 32
        }
        let mv = SIMD8<Float>(repeating: mx.max())
        var sum = SIMD8<Float>()
        o = 0
        while o < last {
            let e = exp8(r.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) - mv)
            r.storeBytes(of: e, toByteOffset: o, as: SIMD8<Float>.self)
            sum += e
            o &+= 32
        }
        let e = exp8(r.loadUnaligned(fromByteOffset: last, as: SIMD8<Float>.self) - mv) * keep
        r.storeBytes(of: e, toByteOffset: last, as: SIMD8<Float>.self)
        sum += e
        let inv = SIMD8<Float>(repeating: 1 / sum.sum())
        o = 0
        while o <= last {
            r.storeBytes(of: r.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) * inv, toByteOffset: o, as: SIMD8<Float>.self)
            o &+= 32
        }
    }

    /// In place over `blocks` blocks of eight: `d[j] = scale a[j] (d[j] - sum_k a[k] d[k])`, where `a` is a
    /// probability row of length `T` (zero above the diagonal; lanes at or past `T` read as zero).
    @inline(__always)
    static func softmaxBackwardBlocks(_ d: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>,
                                      blocks: Int, T: Int, scale: Float) {
        let rd = UnsafeMutableRawPointer(d), ra = UnsafeRawPointer(a)
        @inline(__always) func probs(_ o: Int) -> SIMD8<Float> {
            if o &+ 32 <= T &* 4 { return ra.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) }
            var p = SIMD8<Float>()
            var c = 0
            while (o >> 2) &+ c < T { p[c] = a[(o >> 2) &+ c]; c &+= 1 }
            return p
        }
        let end = blocks &* 32
        var acc = SIMD8<Float>()
        var o = 0
        while o < end {
            acc += probs(o) * rd.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            o &+= 32
        }
        let dot = SIMD8<Float>(repeating: acc.sum()), sv = SIMD8<Float>(repeating: scale)
        o = 0
        while o < end {
            let g = probs(o) * (rd.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) - dot) * sv
            rd.storeBytes(of: g, toByteOffset: o, as: SIMD8<Float>.self)
            o &+= 32
        }
    }

    /// `dst[d, t] = src[t * stride + d]` for `d < hs`, `t < T`; columns `T ..< Tp` zero.
    @inline(__always)
    static func transposeHead(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, T: Int, Tp: Int, hs: Int, stride: Int) {
        for t in 0 ..< T {
            let s = src + t &* stride
            for d in 0 ..< hs { dst[d &* Tp &+ t] = s[d] }
        }
        if Tp > T { for d in 0 ..< hs { (dst + (d &* Tp &+ T)).update(repeating: 0, count: Tp &- T) } }
    }

    /// `dst[t * hp + d] = src[t * stride + d]` for `d < hs`, zero for `hs <= d < hp`.
    @inline(__always)
    static func padHead(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, T: Int, hs: Int, hp: Int, stride: Int) {
        for t in 0 ..< T {
            let o = dst + t &* hp
            o.update(from: src + t &* stride, count: hs)
            if hp > hs { (o + hs).update(repeating: 0, count: hp &- hs) }
        }
    }

    /// `dst[0 ..< hs] = x[0 ..< hs]`, or `+=` with `accumulate`.
    @inline(__always)
    static func storeHead<V: AttentionLanes>(_ dst: UnsafeMutablePointer<Float>, _ x: V, hs: Int, accumulate: Bool) {
        let r = UnsafeMutableRawPointer(dst)
        if hs == V.scalarCount {
            r.storeBytes(of: accumulate ? V.add(x, r.loadUnaligned(as: V.self)) : x, as: V.self)
        } else if accumulate {
            for d in 0 ..< hs { dst[d] += x[d] }
        } else {
            for d in 0 ..< hs { dst[d] = x[d] }
        }
    }
}

/// Two mask tables of 16 lanes each, read as eight lanes at float offset `8 - k` (`k` = live lanes, 1 ... 8):
/// `[1 x 8, 0 x 8]` (keep the first `k` lanes) and `[0 x 8, -inf x 8]` (push the lanes past `k` to -inf).
nonisolated(unsafe) let laneMasks: UnsafeMutablePointer<Float> = {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: 32)
    for i in 0 ..< 16 { p[i] = i < 8 ? 1 : 0; p[16 + i] = i < 8 ? 0 : -.infinity }
    return p
}()

/// A lane vector for one head row in the triangle kernel. Its two operations are written on the
/// concrete SIMD types, so the generic kernel specialises to plain vector code (the generic `SIMD`
/// operators would go lane by lane).
protocol AttentionLanes: SIMD where Scalar == Float {
    /// `acc + s * x` (multiply, then add: no fused FMA on the x86-64 baseline).
    static func madd(_ acc: Self, _ s: Float, _ x: Self) -> Self
    /// `a + b`.
    static func add(_ a: Self, _ b: Self) -> Self
}

extension SIMD4: AttentionLanes where Scalar == Float {
    @inline(__always) static func madd(_ acc: Self, _ s: Float, _ x: Self) -> Self { acc + Self(repeating: s) * x }
    @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a + b }
}

extension SIMD8: AttentionLanes where Scalar == Float {
    @inline(__always) static func madd(_ acc: Self, _ s: Float, _ x: Self) -> Self { acc + Self(repeating: s) * x }
    @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a + b }
}

extension SIMD16: AttentionLanes where Scalar == Float {
    @inline(__always) static func madd(_ acc: Self, _ s: Float, _ x: Self) -> Self { acc + Self(repeating: s) * x }
    @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a + b }
}

extension SIMD32: AttentionLanes where Scalar == Float {
    @inline(__always) static func madd(_ acc: Self, _ s: Float, _ x: Self) -> Self { acc + Self(repeating: s) * x }
    @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a + b }
}
