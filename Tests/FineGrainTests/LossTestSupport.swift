import XCTest
@testable import FineGrain

/// Small deterministic generator for test inputs.
struct TestRNG {
    var s: UInt64
    init(_ seed: UInt64) { s = seed &+ 0x1234_5678 }
    mutating func next() -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53) }
}

/// A ragged loss input from per-row masks; other columns filled by `fill`.
func makeInput(masks: [[UInt8]]) -> LossInput {
    var offsets = [0]
    for m in masks { offsets.append(offsets.last! + m.count) }
    return LossInput(offsets: offsets, mask: masks.flatMap { $0 })
}

/// A random policy-loss input: 4 responses with an interior masked token, a short row and trailing padding.
func randomPolicyInput(seed: UInt64, spread: Double, withIS: Bool = false, withRef: Bool = false) -> LossInput {
    var rng = TestRNG(seed)
    var input = makeInput(masks: [[1, 1, 0, 1, 1], [1, 1, 1], [1, 0, 1, 1, 1, 1, 0], [1, 1, 1, 1]])
    let n = input.tokenCount
    let old = (0 ..< n).map { _ in rng.uniform(-3, -0.2) }
    input.oldLogprob = old
    input.logprob = old.map { $0 + rng.uniform(-spread, spread) }
    // Sequence-level advantages, different per row, as GRPO would give; plus token noise.
    var adv = [Double]()
    for r in 0 ..< input.count {
        let a = rng.uniform(-1.5, 1.5)
        for _ in input.offsets[r] ..< input.offsets[r + 1] { adv.append(a + rng.uniform(-0.2, 0.2)) }
    }
    input.advantages = adv
    if withIS { input.rolloutISWeights = (0 ..< n).map { _ in rng.uniform(0.5, 1.5) } }
    if withRef { input.refLogprob = old.map { $0 + rng.uniform(-0.5, 0.5) } }
    return input
}

/// Central-difference check of `gradient` against `value` w.r.t. one column.
func checkGradient(_ name: String, input: LossInput, params: [String: ParamValue],
                   column: WritableKeyPath<LossInput, [Double]?>, h: Double = 1e-6, tol: Double = 1e-6,
                   alsoShift: WritableKeyPath<LossInput, [Double]?>? = nil,
                   file: StaticString = #filePath, line: UInt = #line) throws {
    let base = try Registry.loss(name, input: input, params: params)
    let x = input[keyPath: column]!
    for t in 0 ..< x.count {
        var plus = input, minus = input
        var xp = x, xm = x
        xp[t] += h; xm[t] -= h
        plus[keyPath: column] = xp; minus[keyPath: column] = xm
        if let other = alsoShift {
            // Shifting a stop-gradient input with the differentiated one freezes sg(lp − old) terms.
            var op = input[keyPath: other]!, om = op
            op[t] += h; om[t] -= h
            plus[keyPath: other] = op; minus[keyPath: other] = om
        }
        let fd = (try Registry.loss(name, input: plus, params: params).value - Registry.loss(name, input: minus, params: params).value) / (2 * h)
        XCTAssertEqual(base.gradient[t], fd, accuracy: tol * (1 + abs(fd)),
                       "\(name) \(params) token \(t): analytic \(base.gradient[t]) vs finite difference \(fd)", file: file, line: line)
    }
}
