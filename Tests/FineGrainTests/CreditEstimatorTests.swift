import XCTest
@testable import FineGrain

/// Hand-worked examples of credit_assignment.md §1 (e), invariants, TRL / OpenRLHF conventions and bad input.
final class CreditEstimatorTests: XCTestCase {
    // MARK: helpers

    /// A full-width batch from padded rows (mask defaults to all ones, one group per row unless given).
    func batch(_ rewards: [[Double]], mask: [[Double]]? = nil, groups: [Int]? = nil,
               values: [[Double]]? = nil) throws -> RolloutBatch {
        let m = mask ?? rewards.map { $0.map { _ in 1.0 } }
        var b = try VerlLayout.batch(responseMask: m, groups: groups?.map(GroupID.int), trimTrailingPadding: false)
        b.tokenReward = try VerlLayout.ragged(rewards, like: b, field: "token_level_rewards")
        if let values { b.value = try VerlLayout.ragged(values, like: b, field: "values") }
        return b
    }

    /// An outcome-only batch: one score per response, `lengths[i]` valid tokens (default 1).
    func outcomes(_ scores: [Double], groups: [Int], lengths: [Int]? = nil) -> RolloutBatch {
        var b = RolloutBatch(groups: groups.map(GroupID.int), lengths: lengths ?? scores.map { _ in 1 })
        b.outcome = scores
        return b
    }

    func run(_ name: String, _ b: RolloutBatch, _ params: [String: ParamValue] = [:]) throws -> AdvantageOutput {
        try Registry.advantages(name, batch: b, params: params)
    }

    /// First token's advantage of every response.
    func perResponse(_ out: AdvantageOutput, _ b: RolloutBatch) -> [Double] {
        (0 ..< b.count).map { out.advantages[b.offsets[$0]] }
    }

    func assertClose(_ got: [Double], _ want: [Double], tol: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, "length", file: file, line: line)
        for (i, (g, w)) in zip(got, want).enumerated() {
            XCTAssertEqual(g, w, accuracy: tol, "index \(i): got \(got), want \(want)", file: file, line: line)
        }
    }

    // MARK: - §1 (e) hand-worked examples

    func testGAEExample() throws {
        let b = try batch([[0, 0, 1]], values: [[0.5, 0.6, 0.8]])
        let out = try run("gae", b, ["gamma": .number(1), "lam": .number(0.95)])
        let ret = out.returns!
        assertClose(ret, [0.9705, 0.99, 1.0], tol: 1e-12)
        assertClose(zip(ret, b.value!).map { $0 - $1 }, [0.4705, 0.39, 0.2], tol: 1e-12)   // pre-whitening A
        assertClose(out.advantages, [0.842364, 0.262789, -1.105153])
    }

    func testGAEDefaultsAreVerlGammaLamOne() throws {
        let b = try batch([[0, 0, 1]], values: [[0.5, 0.6, 0.8]])
        let ret = try run("gae", b).returns!
        assertClose(ret, [1, 1, 1], tol: 1e-12)
    }

    func testGAEHoleIsCarried() throws {
        let b = try batch([[0, 0, 1]], mask: [[1, 0, 1]], values: [[0.5, 0.9, 0.8]])
        let out = try run("gae", b, ["gamma": .number(1), "lam": .number(0.95)])
        assertClose(zip(out.returns!, b.value!).map { $0 - $1 }, [0.49, 0.2, 0.2], tol: 1e-12)
        // V[1] is never used: changing it moves only returns[1] (= A + V), not the advantages.
        var b2 = b; b2.value![1] = -7
        let out2 = try run("gae", b2, ["gamma": .number(1), "lam": .number(0.95)])
        assertClose(out2.advantages, out.advantages, tol: 1e-12)
    }

    func testGRPOExamples() throws {
        assertClose(perResponse(try run("grpo", outcomes([1, 0, 0], groups: [0, 0, 0])), outcomes([1, 0, 0], groups: [0, 0, 0])),
                    [1.154699, -0.577349, -0.577349])
        let two = outcomes([1, 0], groups: [0, 0])
        assertClose(perResponse(try run("grpo", two), two), [0.707106, -0.707106])
        let b = outcomes([1, 0, 0], groups: [0, 0, 0])
        assertClose(perResponse(try run("dr_grpo", b), b), [0.666667, -0.333333, -0.333333])
        assertClose(perResponse(try run("grpo", b, ["norm_adv_by_std_in_grpo": .bool(false)]), b), [0.666667, -0.333333, -0.333333])
    }

    func testGRPOSingletonIsNotZero() throws {
        let b = outcomes([2], groups: [0])
        assertClose(perResponse(try run("grpo", b), b), [2 / (1 + 1e-6)], tol: 1e-15)
    }

    func testGRPOLoopVersusVectorized() throws {
        let b = outcomes([1, 1 + 1e-4], groups: [0, 0])
        assertClose(perResponse(try run("grpo", b), b), [-0.697246, 0.697246])
        // Spec: +-0.049950 (std floored at sqrt(1e-6)); verl's float32 group mean of (1, 1.0001) is off by
        // ~7e-8, which shifts both values by ~7e-5, exactly as verl computes them.
        assertClose(perResponse(try run("grpo_vectorized", b), b), [-0.049950, 0.049950], tol: 1e-4)
    }

    func testRLOOExampleAndSingletons() throws {
        let b = outcomes([1, 0, 0], groups: [0, 0, 0])
        assertClose(perResponse(try run("rloo", b), b), [1, -0.5, -0.5], tol: 1e-12)
        assertClose(perResponse(try run("rloo_vectorized", b), b), [1, -0.5, -0.5], tol: 1e-12)
        let s = outcomes([0.7], groups: [0])
        XCTAssertEqual(perResponse(try run("rloo", s), s), [0.7])            // loop: raw score
        XCTAssertEqual(perResponse(try run("rloo_vectorized", s), s), [0])   // vectorised: 0
    }

    func testReinforcePlusPlusExamples() throws {
        let b = try batch([[0, 1, 0], [0, 0, 0]], mask: [[1, 1, 0], [1, 1, 1]])
        let out = try run("reinforce_plus_plus", b, ["gamma": .number(1)])
        assertClose(out.advantages, [1.095445, 1.095445, 0, -0.730297, -0.730297, -0.730297])
        let d = try batch([[0, 0, 1]])
        assertClose(try run("reinforce_plus_plus", d, ["gamma": .number(0.9)]).returns!, [0.81, 0.9, 1.0], tol: 1e-12)
    }

    func testReinforcePlusPlusHoles() throws {
        let b = try batch([[0, 0, 1], [1, 0, 0]], mask: [[1, 0, 1], [1, 1, 1]])
        // verl 0.9.1 (default): carried through the hole, returns zeroed there.
        assertClose(try run("reinforce_plus_plus", b, ["gamma": .number(0.9)]).returns!, [0.9, 0, 1.0, 1, 0, 0], tol: 1e-12)
        // Older verl: restart after the hole, which keeps its own return.
        assertClose(try run("reinforce_plus_plus", b, ["gamma": .number(0.9), "reset_at_holes": .bool(true)]).returns!,
                    [0, 0.9, 1.0, 1, 0, 0], tol: 1e-12)
    }

    func testReinforcePlusPlusBaselineExample() throws {
        let b = outcomes([1, 0, 0], groups: [0, 0, 0], lengths: [2, 1, 3])
        let out = try run("reinforce_plus_plus_baseline", b)
        assertClose(out.advantages, [1.290994, 1.290994, -0.645497, -0.645497, -0.645497, -0.645497])
    }

    func testReMaxExample() throws {
        var b = try batch([[0, 0, 1]])
        b.rewardBaseline = [0.5]
        let out = try run("remax", b)
        assertClose(out.returns!, [1, 1, 1], tol: 0)
        assertClose(out.advantages, [0.5, 0.5, 0.5], tol: 0)
    }

    func testPassKOnlyBestIsCredited() throws {
        let b = outcomes([0.2, 0.9, 0.5, 1, 1], groups: [0, 0, 0, 1, 1])
        let a = perResponse(try run("grpo_passk", b, ["norm_adv_by_std_in_grpo": .bool(false)]), b)
        assertClose(a, [0, 0.4, 0, 0, 0], tol: 1e-12)
    }

    // MARK: - invariants

    func randomOutcomes(seed: UInt64, rows: Int, groups: Int) -> RolloutBatch {
        var rng = SplitMix(seed)
        let g = (0 ..< rows).map { $0 % groups }
        return outcomes((0 ..< rows).map { _ in rng.uniform() * 4 - 2 }, groups: g, lengths: (0 ..< rows).map { _ in 1 + Int(rng.uniform() * 5) })
    }

    func testZeroSumPerGroup() throws {
        let b = randomOutcomes(seed: 7, rows: 24, groups: 5)
        for name in ["grpo", "dr_grpo", "grpo_vectorized", "rloo", "rloo_vectorized", "trl_grpo", "openrlhf_group_norm"] {
            let a = perResponse(try run(name, b), b)
            for g in 0 ..< 5 {
                let s = (0 ..< b.count).filter { b.group[$0] == g }.reduce(0.0) { $0 + a[$1] }
                // grpo_vectorized: float32 group mean, so zero-sum only to float32 precision.
                XCTAssertEqual(s, 0, accuracy: name == "grpo_vectorized" ? 1e-6 : 1e-9, "\(name) group \(g)")
            }
        }
    }

    func testRLOOIsScaledDrGRPO() throws {
        let b = randomOutcomes(seed: 3, rows: 12, groups: 3)   // groups of 4
        let r = perResponse(try run("rloo", b), b), d = perResponse(try run("dr_grpo", b), b)
        assertClose(r, d.map { $0 * 4 / 3 }, tol: 1e-12)
    }

    func testGRPOAffineInvarianceAndDrGRPOShiftInvariance() throws {
        let b = randomOutcomes(seed: 9, rows: 12, groups: 3)
        var affine = b; affine.outcome = b.outcome!.map { 3 * $0 + 5 }
        var shifted = b; shifted.outcome = b.outcome!.map { $0 - 2 }
        let a = perResponse(try run("grpo", b, ["epsilon": .number(0)]), b)
        assertClose(perResponse(try run("grpo", affine, ["epsilon": .number(0)]), affine), a, tol: 1e-9)
        let d = perResponse(try run("dr_grpo", b), b)
        assertClose(perResponse(try run("dr_grpo", shifted), shifted), d, tol: 1e-12)
    }

    func testGAEMonteCarloReturnWhenGammaLamOne() throws {
        var rng = SplitMix(11)
        let rewards = (0 ..< 4).map { _ in (0 ..< 6).map { _ in rng.uniform() - 0.5 } }
        let values = (0 ..< 4).map { _ in (0 ..< 6).map { _ in rng.uniform() } }
        let b = try batch(rewards, values: values)
        let ret = try run("gae", b).returns!
        for r in 0 ..< 4 {
            for t in 0 ..< 6 {
                let rtg = rewards[r][t...].reduce(0, +)
                XCTAssertEqual(ret[r * 6 + t], rtg, accuracy: 1e-12)
            }
        }
    }

    func testPermutingAGroupPermutesResults() throws {
        let scores = [0.3, 1.2, -0.4, 0.9, 2.0], groups = [0, 0, 0, 1, 1], lengths = [2, 3, 1, 2, 2]
        let perm = [2, 0, 1, 4, 3]   // within-group permutation
        let b = outcomes(scores, groups: groups, lengths: lengths)
        let p = outcomes(perm.map { scores[$0] }, groups: perm.map { groups[$0] }, lengths: perm.map { lengths[$0] })
        for name in ["grpo", "grpo_vectorized", "rloo", "rloo_vectorized", "opo", "gpg", "grpo_passk", "reinforce_plus_plus_baseline", "gdpo"] {
            let a = perResponse(try run(name, b), b), q = perResponse(try run(name, p), p)
            assertClose(q, perm.map { a[$0] }, tol: 1e-12)
        }
    }

    func testTRLConventions() throws {
        let b = outcomes([1, 0, 0, 2, 4, 5], groups: [0, 0, 0, 1, 1, 2])
        let g0Std = (1.0 / 3).squareRoot(), g1Std = 2.0.squareRoot()
        let group = perResponse(try run("trl_grpo", b), b)
        assertClose(group, [(2.0 / 3) / (g0Std + 1e-4), (-1.0 / 3) / (g0Std + 1e-4), (-1.0 / 3) / (g0Std + 1e-4),
                            -1 / (g1Std + 1e-4), 1 / (g1Std + 1e-4), 0], tol: 1e-12)
        let all = [1.0, 0, 0, 2, 4, 5], mu = all.reduce(0, +) / 6
        let bStd = (all.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / 5).squareRoot()
        let batchMode = perResponse(try run("trl_grpo", b, ["scale_rewards": .string("batch")]), b)
        assertClose(batchMode, [2.0 / 3, -1.0 / 3, -1.0 / 3, -1, 1, 0].map { $0 / (bStd + 1e-4) }, tol: 1e-12)
        let none = perResponse(try run("trl_grpo", b, ["scale_rewards": .string("none")]), b)
        assertClose(none, [2.0 / 3, -1.0 / 3, -1.0 / 3, -1, 1, 0], tol: 1e-12)
        XCTAssertThrowsError(try run("trl_grpo", b, ["scale_rewards": .string("sometimes")]))
    }

    func testOpenRLHFGroupNorm() throws {
        let b = outcomes([1, 0, 0, 2, 4], groups: [0, 0, 0, 1, 1])
        let s0 = (1.0 / 3).squareRoot(), s1 = 2.0.squareRoot()
        assertClose(perResponse(try run("openrlhf_group_norm", b), b),
                    [(2.0 / 3) / (s0 + 1e-9), (-1.0 / 3) / (s0 + 1e-9), (-1.0 / 3) / (s0 + 1e-9), -1 / (s1 + 1e-9), 1 / (s1 + 1e-9)], tol: 1e-12)
        XCTAssertThrowsError(try run("openrlhf_group_norm", outcomes([1, 2, 3], groups: [0, 0, 1]))) {
            XCTAssertEqual(($0 as? FineGrainError).map(field), "group")
        }
    }

    /// The parallel path (> 64k tokens) against a plain scalar reference.
    func testLargeBatchMatchesScalarReference() throws {
        var rng = SplitMix(5)
        let rows = 160, width = 512
        var rewards = [[Double]](), values = [[Double]](), mask = [[Double]]()
        for _ in 0 ..< rows {
            let len = 1 + Int(rng.uniform() * Double(width - 1))
            mask.append((0 ..< width).map { t in t < len && rng.uniform() > 0.1 ? 1 : 0 })
            rewards.append((0 ..< width).map { t in mask.last![t] == 1 ? rng.uniform() - 0.5 : 0 })
            values.append((0 ..< width).map { _ in rng.uniform() })
        }
        let b = try batch(rewards, mask: mask, values: values)
        XCTAssertGreaterThan(b.tokenCount, CreditKernels.parallelTokenThreshold)
        let (gamma, lam) = (0.99, 0.95)
        let gae = try run("gae", b, ["gamma": .number(gamma), "lam": .number(lam)])
        let rpp = try run("reinforce_plus_plus", b, ["gamma": .number(gamma)])
        var refA = [Double](), refG = [Double]()
        for r in 0 ..< rows {
            var a = [Double](repeating: 0, count: width), g = a
            var nextV = 0.0, lastA = 0.0, run = 0.0
            for t in stride(from: width - 1, through: 0, by: -1) {
                if mask[r][t] == 1 {
                    lastA = rewards[r][t] + gamma * nextV - values[r][t] + gamma * lam * lastA
                    nextV = values[r][t]
                    run = rewards[r][t] + gamma * run
                    g[t] = run
                }
                a[t] = lastA
            }
            refA += a; refG += g
        }
        assertClose(gae.returns!, zip(refA, b.value!).map { $0 + $1 }, tol: 1e-12)
        assertClose(rpp.returns!, refG, tol: 1e-12)
        let whitened = try MaskedStats.maskedWhiten(refA, b.mask)
        assertClose(gae.advantages, whitened, tol: 1e-9)
    }

    // MARK: - bad input

    func field(_ e: FineGrainError) -> String {
        switch e {
        case let .invalidField(f, _): return f
        case let .missingField(f, _): return f
        case let .invalidParameter(n, _, _): return n
        case let .unknownMethod(_, n, _): return n
        case .unsupported: return "unsupported"
        }
    }

    func assertThrowsField(_ expected: String, _ body: @autoclosure () throws -> Any, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            guard let fe = e as? FineGrainError else { return XCTFail("not a FineGrainError: \(e)", file: file, line: line) }
            XCTAssertEqual(field(fe), expected, "\(fe)", file: file, line: line)
            XCTAssertFalse(fe.description.isEmpty)
        }
    }

    func testGAEWithoutValuesNamesTheField() throws {
        assertThrowsField("values", try run("gae", try batch([[0, 1]])))
    }

    func testNaNRewardIsRejected() {
        var b = outcomes([1, .nan], groups: [0, 0])
        assertThrowsField("reward", try run("grpo", b))
        b.outcome = nil
        assertThrowsField("reward", try run("rloo", b))     // neither outcome nor token rewards
    }

    func testPassKSingletonGroupIsRejected() {
        assertThrowsField("group", try run("grpo_passk", outcomes([1, 0, 1], groups: [0, 0, 1])))
    }

    func testUnknownParameterIsRejected() {
        assertThrowsField("lambda", try run("gae", outcomes([1], groups: [0]), ["lambda": .number(0.9)]))
        assertThrowsField("gamma", try run("gae", outcomes([1], groups: [0]), ["gamma": .string("x")]))
        assertThrowsField("nope", try run("nope", outcomes([1], groups: [0])))
    }

    func testOtherMissingFields() throws {
        assertThrowsField("reward_baseline", try run("remax", try batch([[0, 1]])))
        assertThrowsField("old_logprobs", try run("optimal_token_baseline", try batch([[0, 1]])))
        var b = try batch([[0, 1]]); b.oldLogprob = [0, 0]
        assertThrowsField("sum_pi_squared", try run("tir_optimal_token_baseline", b))
    }

    func testWhiteningNeedsTwoValidTokens() throws {
        assertThrowsField("unsupported", try run("reinforce_plus_plus", try batch([[1, 0]], mask: [[1, 0]])))
        assertThrowsField("unsupported", try run("gae", try batch([[1]], values: [[0]])))
    }
}

/// Deterministic test randomness.
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
