import XCTest
@testable import FineGrain

/// The fused default pipelines of `pure` (constant segments, no KL) and `prime` (no `[N]` temporaries) against
/// the step-by-step public functions they replace, on batches large enough for the row-parallel paths.
final class PRMFusedPathTests: XCTestCase {
    func assertClose(_ a: [Double], _ b: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        var worst = 0.0
        for (x, y) in zip(a, b) { worst = max(worst, abs(x - y) / (1e-10 + 1e-9 * abs(y))) }
        XCTAssertLessThanOrEqual(worst, 1, "\(what): worst scaled error \(worst)", file: file, line: line)
    }

    /// PURE's pipeline from `shapedRewards` / `tokenRewards`: G = reverse cumsum, 0 at step ends (unless kept),
    /// then OpenRLHF normalisation.
    func pureReference(_ b: RolloutBatch, _ params: [String: ParamValue]) throws -> (adv: [Double], ret: [Double]) {
        let p = try Params.resolve(params, specs: PURE.info.params, method: "pure")
        let shaped = try PURE.shapedRewards(b, p), tr = PURE.tokenRewards(b, shaped)
        let maskEnds = !(try p.bool("nomask_separator_adv"))
        var ret = [Double](repeating: 0, count: b.tokenCount), isEnd = [UInt8](repeating: 0, count: b.tokenCount)
        let so = b.stepOffsets!, ends = b.stepEnds!
        for r in 0 ..< b.count {
            for k in so[r] ..< so[r + 1] where maskEnds { isEnd[b.offsets[r] + ends[k] - 1] = 1 }
            var g = 0.0
            for t in b.range(r).reversed() { g += tr[t]; ret[t] = b.mask[t] == 0 || isEnd[t] != 0 ? 0 : g }
        }
        var adv = ret
        if try p.bool("normalize") { PURE.normalizeOpenRLHF(&adv, mask: b.mask, zeroed: maskEnds ? isEnd : nil, compat: false) }
        return (adv, ret)
    }

    func testPureSegmentsMatchTheTokenScan() throws {
        for (responses, len) in [(12, 300), (48, 4096)] {
            let b = SyntheticBatch.pureBenchmark(responses: responses, maxLength: len, group: 4, seed: 11)
            let cases: [[String: ParamValue]] = [
                [:], ["nomask_separator_adv": .bool(true)], ["normalize": .bool(false)],
                ["reward_baseline": .string("step"), "reward_mode": .string("PRM")], ["reward_mode": .string("VR")],
            ]
            for params in cases {
                let out = try Registry.advantages("pure", batch: b, params: params), want = try pureReference(b, params)
                assertClose(out.advantages, want.adv, "pure advantages \(params) \(responses)x\(len)")
                assertClose(out.returns!, want.ret, "pure returns \(params) \(responses)x\(len)")
            }
        }
    }

    func testPrimeFusedMatchesTheStepwisePipeline() throws {
        for (responses, len) in [(12, 300), (48, 4096)] {
            let b = SyntheticBatch.primeBenchmark(responses: responses, maxLength: len, group: 4, seed: 7)
            let cases: [[String: ParamValue]] = [
                [:], ["prime_norm": .string("none")], ["reward_gt_coef": .number(0)],
                ["reward_model_gamma": .number(0.9), "verifier_gamma": .number(0.8), "beta": .number(0.3)],
            ]
            for params in cases {
                let p = try Params.resolve(params, specs: PRIME.info.params, method: "prime")
                let out = try Registry.advantages("prime", batch: b, params: params)
                let gt = try p.double("reward_gt_coef") != 0
                let implicit = try PRIME.implicitRewards(b, p, acc: b.outcome).normalized
                let want = try PRIME.advantages(b, implicit: implicit, outcome: gt ? b.outcome : nil, p)
                assertClose(out.advantages, want.advantages, "prime advantages \(params) \(responses)x\(len)")
                assertClose(out.returns!, want.returns!, "prime returns \(params) \(responses)x\(len)")
            }
        }
    }
}
