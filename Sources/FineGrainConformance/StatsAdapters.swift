import FineGrain

/// Conformance adapters for masked statistics and entropy.
let statsAdapters: [ConformanceAdapter] = [
    ConformanceAdapter("masked_mean") { c in try maskedReduce(c, mean: true) },
    ConformanceAdapter("masked_sum") { c in try maskedReduce(c, mean: false) },
    ConformanceAdapter("masked_var") { c in
        let (x, m, _) = try flatValuesMask(c)
        let unbiased = c.param("unbiased")?.boolValue ?? true
        return ["result": .number(try MaskedStats.maskedVar(x, m, unbiased: unbiased))]
    },
    ConformanceAdapter("masked_whiten") { c in
        if c.inputs["logprobs"] != nil { return try spoMaskedWhiten(c) }  // SPO trainer's variant (same name)
        let (x, m, width) = try flatValuesMask(c)
        let shift = c.param("shift_mean")?.boolValue ?? true
        let y = try MaskedStats.maskedWhiten(x, m, shiftMean: shift)
        return ["result": .matrix(stride(from: 0, to: y.count, by: width).map { Array(y[$0 ..< $0 + width]) })]
    },
    ConformanceAdapter("entropy_from_logits") { c in
        guard let rows = try c.input("logits").arrayValue else {
            throw FineGrainError.invalidField(field: "logits", reason: "expected [B][T][V]")
        }
        let cube = try rows.map { try $0.doubleMatrix(field: "logits") }
        guard let v = cube.first?.first?.count, v > 0 else { throw FineGrainError.invalidField(field: "logits", reason: "empty") }
        var flat = [Double]()
        for plane in cube {
            for row in plane {
                guard row.count == v else { throw FineGrainError.invalidField(field: "logits", reason: "ragged vocabulary dimension") }
                flat.append(contentsOf: row)
            }
        }
        let (h, g) = try Entropy.withGradient(flat, vocab: v)
        var hi = 0, gi = 0
        var entropy = [JSONValue](), grad = [JSONValue]()
        for plane in cube {
            entropy.append(.numbers(Array(h[hi ..< hi + plane.count]))); hi += plane.count
            var gp = [[Double]]()
            for _ in plane { gp.append(Array(g[gi ..< gi + v])); gi += v }
            grad.append(.matrix(gp))
        }
        return ["entropy": .array(entropy), "grad_logits": .array(grad)]
    },
]

/// Flattens `values` and `mask` `[B][T]`; mask entries must be 0/1.
func flatValuesMask(_ c: GoldenCase) throws -> ([Double], [UInt8], Int) {
    let x = try c.matrix("values"), m = try c.matrix("mask")
    guard x.count == m.count, let width = m.first?.count, zip(x, m).allSatisfy({ $0.count == width && $1.count == width }) else {
        throw FineGrainError.invalidField(field: "mask", reason: "shape differs from values")
    }
    let mask = try m.flatMap { row in try row.map { v -> UInt8 in
        guard v == 0 || v == 1 else { throw FineGrainError.invalidField(field: "mask", reason: "entries must be 0 or 1, got \(v)") }
        return v == 1 ? 1 : 0
    } }
    return (x.flatMap { $0 }, mask, width)
}

func maskedReduce(_ c: GoldenCase, mean: Bool) throws -> [String: JSONValue] {
    let (x, m, width) = try flatValuesMask(c)
    switch c.param("axis") {
    case nil, .some(.null):
        return ["result": .number(mean ? MaskedStats.maskedMean(x, m) : MaskedStats.maskedSum(x, m))]
    case let .some(a) where a.doubleValue == 1 || a.doubleValue == -1:
        let offsets = Array(stride(from: 0, through: x.count, by: width))
        return ["result": .numbers(mean ? MaskedStats.rowMeans(x, m, offsets: offsets) : MaskedStats.rowSums(x, m, offsets: offsets))]
    case let .some(a):
        throw FineGrainError.invalidParameter(name: "axis", method: mean ? "masked_mean" : "masked_sum", reason: "unsupported axis \(a)")
    }
}
