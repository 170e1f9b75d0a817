/// Output buffers that a kernel overwrites completely: skips the zero-fill pass of `Array(repeating:count:)`
/// (a full extra write of the output, measurable at a million tokens). Only for outputs whose every element
/// the caller writes before anything reads it.
@inlinable
public func overwrittenDoubles(_ n: Int) -> [Double] {
    [Double](unsafeUninitializedCapacity: n) { _, initialized in initialized = n }
}
