/// Small SIMD helpers for the kernels' inner loops. A plain `for` reduction is a chain of dependent
/// adds (the compiler may not reassociate floats), so dot products use eight independent lanes.
@inline(__always)
func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i &+ 8 <= n {
        let x = ra.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        let y = rb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        acc += x * y // not addingProduct: without -mfma that lowers to per-lane fmaf calls
        i &+= 8
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i &+= 1 }
    return s
}

/// `y[i] += alpha * x[i]` for `i in 0 ..< n`.
@inline(__always)
func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    let a = SIMD8<Float>(repeating: alpha)
    while i &+ 8 <= n {
        let xv = rx.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        let yv = ry.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        ry.storeBytes(of: yv + a * xv, toByteOffset: i &* 4, as: SIMD8<Float>.self)
        i &+= 8
    }
    while i < n { y[i] += alpha * x[i]; i &+= 1 }
}

/// `y[i] += x[i]` for `i in 0 ..< n`.
@inline(__always)
func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    while i &+ 8 <= n {
        let xv = rx.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        let yv = ry.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        ry.storeBytes(of: yv + xv, toByteOffset: i &* 4, as: SIMD8<Float>.self)
        i &+= 8
    }
    while i < n { y[i] += x[i]; i &+= 1 }
}

/// `exp(x)` on eight lanes (Cephes `expf`'s range reduction `x = n ln2 + r` and degree-6 polynomial, about
/// 2 ulp on the normal range); lanes below -87.3 give ~1e-38 rather than 0, and `-inf` / NaN are not
/// special-cased: callers mask those lanes themselves. Written with SSE2-only operations (no `floor`,
/// no float-to-int conversion) so it stays vectorised on the x86-64 baseline.
@inline(__always)
func exp8(_ x0: SIMD8<Float>) -> SIMD8<Float> {
    let lo = SIMD8<Float>(repeating: -87.3), hi = SIMD8<Float>(repeating: 88.3)
    var x = x0.replacing(with: hi, where: x0 .> hi)
    x.replace(with: lo, where: x .< lo)
    // n = round(x / ln2) via the 1.5 * 2^23 trick: its low mantissa bits then hold n.
    let magic = SIMD8<Float>(repeating: 12_582_912)
    let t = x * 1.44269504088896341 + magic
    let n = t - magic
    var r = x - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    // 2^n: the bits of t are 0x4B40_0000 + n; shift n + 127 into the exponent field.
    let bits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127
    return p * unsafeBitCast(bits &<< 23, to: SIMD8<Float>.self)
}

/// `y[j] += sum_n x[n, j]` over the `rows` rows of `x [rows, cols]` (row-major): the bias gradient of a
/// linear layer. Eight columns per lane group, four rows per pass over `y`.
func addColumnSums(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, cols: Int) {
    let ry = UnsafeMutableRawPointer(y), rx = UnsafeRawPointer(x)
    let stride = cols &* 4
    var j = 0
    while j &+ 8 <= cols {
        var acc = SIMD8<Float>(), acc2 = SIMD8<Float>()
        var n = 0
        var off = j &* 4
        while n &+ 2 <= rows {
            acc += rx.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
            acc2 += rx.loadUnaligned(fromByteOffset: off &+ stride, as: SIMD8<Float>.self)
            off &+= 2 &* stride
            n &+= 2
        }
        if n < rows { acc += rx.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self) }
        ry.storeBytes(of: ry.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self) + (acc + acc2),
                      toByteOffset: j &* 4, as: SIMD8<Float>.self)
        j &+= 8
    }
    while j < cols {
        var s: Float = 0
        for n in 0 ..< rows { s += x[n &* cols &+ j] }
        y[j] += s
        j &+= 1
    }
}
