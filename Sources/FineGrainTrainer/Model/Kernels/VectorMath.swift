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
