/// Residual connection (He et al. 2016, as used in the Transformer): `out = a + b`; backward
/// `da += dout`, `db += dout`. The model folds the backward into one running gradient buffer (the
/// residual stream's gradient is passed through unchanged), which is exactly this rule.
public enum Residual {
    public static func forward(out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, count: Int) {
        for i in 0 ..< count { out[i] = a[i] + b[i] }
    }

    public static func backward(da: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, count: Int) {
        for i in 0 ..< count { da[i] += dout[i]; db[i] += dout[i] }
    }
}
