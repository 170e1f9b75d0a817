import FineGrain
import FineGrainTrainer
import XCTest

final class ModelSamplingTests: XCTestCase {
    let config = GPTConfig(vocabSize: 11, contextLength: 24, dModel: 36, nLayers: 2, nHeads: 2) // head size 18: SIMD + tail

    /// A model with sharper-than-init logits so sampling behaviour is visible.
    func model(seed: UInt64 = 21) throws -> GPT {
        let m = try GPT(config: config, seed: seed)
        var rng = SplitMix64(seed: seed + 1)
        for i in 0 ..< m.parameters.count { m.parameters[i] += Float(0.4 * rng.normal()) }
        return m
    }

    func testKVCacheLogitsEqualFullForwardAtEveryPosition() throws {
        let m = try model()
        let B = 3, T = 20
        var rng = SplitMix64(seed: 5)
        let tokens = (0 ..< B * T).map { _ in Int32(rng.next() % 11) }
        let full = try m.forward(tokens: tokens, batch: B, length: T)
        let inc = try m.incrementalLogits(tokens: tokens, batch: B, length: T)
        let scale = full.map { abs($0) }.max()!
        let err = zip(full, inc).map { abs($0 - $1) }.max()!
        print("ModelSamplingTests KV-cache vs full forward: max abs diff \(err) (logit scale \(scale))")
        XCTAssertLessThan(err, 1e-4 * max(1, scale))
    }

    /// Greedy by re-running the full forward on the growing sequence (no cache).
    func greedyByFullForward(_ m: GPT, prompt: [Int32], steps: Int) throws -> [Int32] {
        var seq = prompt
        var out: [Int32] = []
        let V = config.vocabSize
        for _ in 0 ..< steps {
            let logits = try m.forward(tokens: seq, batch: 1, length: seq.count)
            let row = logits[((seq.count - 1) * V) ..< (seq.count * V)]
            let next = Int32(row.indices.max { row[$0] < row[$1] }! - (seq.count - 1) * V)
            out.append(next)
            seq.append(next)
        }
        return out
    }

    func testTemperatureToZeroEqualsGreedy() throws {
        let m = try model()
        let prompts: [[Int32]] = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
        var rng = SplitMix64(seed: 1)
        let greedy = try m.sample(prompts: prompts, maxNewTokens: 10, temperature: 0, rng: &rng)
        let cold = try m.sample(prompts: prompts, maxNewTokens: 10, temperature: 1e-4, rng: &rng)
        let nucleus = try m.sample(prompts: prompts, maxNewTokens: 10, temperature: 1, topP: 1e-6, rng: &rng)
        for (b, p) in prompts.enumerated() {
            let ref = try greedyByFullForward(m, prompt: p, steps: 10)
            XCTAssertEqual(greedy.tokens[b], ref, "temperature 0, row \(b)")
            XCTAssertEqual(cold.tokens[b], ref, "temperature 1e-4, row \(b)")
            XCTAssertEqual(nucleus.tokens[b], ref, "topP 1e-6, row \(b)")
        }
    }

    /// Sampling-time log-probs equal the log-probs recomputed by a full forward at the same temperature.
    func testSampledLogprobsMatchRecomputedLogprobs() throws {
        let m = try model()
        let prompts: [[Int32]] = [[1, 2], [3, 4, 5, 6]]
        var rng = SplitMix64(seed: 9)
        for tau: Float in [1, 0.7] {
            let s = try m.sample(prompts: prompts, maxNewTokens: 8, temperature: tau, rng: &rng)
            for b in 0 ..< 2 {
                let seq = prompts[b] + s.tokens[b]
                let targets = GPT.nextTokenTargets(tokens: seq, batch: 1, length: seq.count)
                let lp = try m.logprobs(tokens: seq, targets: targets, batch: 1, length: seq.count, temperature: tau).logprobs
                for (j, v) in s.logprobs[b].enumerated() {
                    XCTAssertEqual(v, lp[prompts[b].count - 1 + j], accuracy: 1e-4)
                }
            }
        }
    }

    /// top-p = 1 reproduces the softmax distribution; a small top-p only ever emits nucleus tokens.
    func testTopPBehaviour() throws {
        let m = try model()
        let prompt: [Int32] = [2, 7, 1]
        let logits = try m.forward(tokens: prompt, batch: 1, length: 3)
        let z = logits[(2 * 11) ..< (3 * 11)].map(Double.init)
        let mx = z.max()!
        let e = z.map { exp($0 - mx) }
        let probs = e.map { $0 / e.reduce(0, +) }
        let order = probs.indices.sorted { probs[$0] > probs[$1] }
        var nucleus = Set<Int32>(), mass = 0.0
        for i in order { nucleus.insert(Int32(i)); mass += probs[i]; if mass >= 0.5 { break } }
        var rng = SplitMix64(seed: 3)
        let n = 3000
        var counts = [Int](repeating: 0, count: 11)
        var seenSmall = Set<Int32>()
        let full = try m.sample(prompts: Array(repeating: prompt, count: n), maxNewTokens: 1, temperature: 1, topP: 1, rng: &rng)
        let small = try m.sample(prompts: Array(repeating: prompt, count: n), maxNewTokens: 1, temperature: 1, topP: 0.5, rng: &rng)
        for b in 0 ..< n {
            counts[Int(full.tokens[b][0])] += 1
            seenSmall.insert(small.tokens[b][0])
        }
        for j in 0 ..< 11 {
            XCTAssertEqual(Double(counts[j]) / Double(n), probs[j], accuracy: 0.03, "token \(j) frequency at topP = 1")
        }
        XCTAssertGreaterThan(counts.filter { $0 > 0 }.count, nucleus.count)
        XCTAssertTrue(seenSmall.isSubset(of: nucleus), "topP = 0.5 emitted \(seenSmall), nucleus \(nucleus)")
        print("ModelSamplingTests top-p: nucleus(0.5) = \(nucleus.sorted()), topP=1 emitted \(counts.filter { $0 > 0 }.count) distinct tokens")
    }

    func testStopTokenAndRaggedPrompts() throws {
        let m = try model()
        var rng = SplitMix64(seed: 4)
        let prompts: [[Int32]] = [[1], [2, 3, 4, 5, 6, 7], [8, 9]]
        let s = try m.sample(prompts: prompts, maxNewTokens: 12, temperature: 1.5, stopToken: 0, rng: &rng)
        for b in 0 ..< 3 {
            XCTAssertFalse(s.tokens[b].isEmpty)
            XCTAssertLessThanOrEqual(s.tokens[b].count, 12)
            XCTAssertEqual(s.tokens[b].count, s.logprobs[b].count)
            let stopAt = s.tokens[b].firstIndex(of: 0)
            if let stopAt {
                XCTAssertEqual(stopAt, s.tokens[b].count - 1)
                XCTAssertTrue(s.stopped[b])
            } else {
                XCTAssertEqual(s.tokens[b].count, 12)
                XCTAssertFalse(s.stopped[b])
            }
            XCTAssertTrue(s.logprobs[b].allSatisfy { $0 <= 0 && $0.isFinite })
        }
        // determinism from the seed
        var r1 = SplitMix64(seed: 77), r2 = SplitMix64(seed: 77)
        XCTAssertEqual(try m.sample(prompts: prompts, maxNewTokens: 5, rng: &r1), try m.sample(prompts: prompts, maxNewTokens: 5, rng: &r2))
    }

    /// Sample, pack prompt + response, recompute: the packed log-probs of the response tokens equal the
    /// sampling-time ones, and scatter / responseValues are inverse.
    func testPackedSequencesRoundTrip() throws {
        let m = try model()
        var rng = SplitMix64(seed: 31)
        let prompts: [[Int32]] = [[1, 2, 3], [4], [5, 6]]
        let s = try m.sample(prompts: prompts, maxNewTokens: 6, temperature: 1, stopToken: 0, rng: &rng)
        let packed = try PackedSequences(prompts: prompts, responses: s.tokens, length: 12)
        XCTAssertEqual(packed.length, 12)
        XCTAssertEqual(packed.responseMask.reduce(0, +), Float(s.tokens.map(\.count).reduce(0, +)))
        let lp = try m.logprobs(tokens: packed.tokens, targets: packed.targets, batch: packed.batch, length: packed.length).logprobs
        let per = packed.responseValues(lp)
        for b in 0 ..< 3 {
            for j in 0 ..< s.tokens[b].count { XCTAssertEqual(per[b][j], s.logprobs[b][j], accuracy: 1e-4) }
        }
        let back = try packed.scatter(per)
        for i in 0 ..< back.count { XCTAssertEqual(back[i], packed.responseMask[i] == 1 ? lp[i] : 0) }
        XCTAssertThrowsError(try PackedSequences(prompts: prompts, responses: [[1]]))
        XCTAssertThrowsError(try PackedSequences(prompts: prompts, responses: s.tokens, length: 3))
        XCTAssertThrowsError(try packed.scatter([[1]]))
    }

    func testBadSamplingInputThrows() throws {
        let m = try model()
        var rng = SplitMix64(seed: 0)
        func name(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch let e as FineGrainError {
                switch e {
                case let .invalidField(f, _): return f
                case let .invalidParameter(n, _, _): return n
                default: return "\(e)"
                }
            } catch { return "\(error)" }
        }
        XCTAssertEqual(name { _ = try m.sample(prompts: [], maxNewTokens: 3, rng: &rng) }, "prompts")
        XCTAssertEqual(name { _ = try m.sample(prompts: [[1], []], maxNewTokens: 3, rng: &rng) }, "prompts[1]")
        XCTAssertEqual(name { _ = try m.sample(prompts: [[1, 11]], maxNewTokens: 3, rng: &rng) }, "prompts[0]")
        XCTAssertEqual(name { _ = try m.sample(prompts: [[1]], maxNewTokens: 24, rng: &rng) }, "maxNewTokens")
        XCTAssertEqual(name { _ = try m.sample(prompts: [[1]], maxNewTokens: 0, rng: &rng) }, "maxNewTokens")
        XCTAssertEqual(name { _ = try m.sample(prompts: [[1]], maxNewTokens: 3, temperature: -1, rng: &rng) }, "temperature")
        XCTAssertEqual(name { _ = try m.sample(prompts: [[1]], maxNewTokens: 3, topP: 0, rng: &rng) }, "topP")
        XCTAssertEqual(name { _ = try m.sample(prompts: [[1]], maxNewTokens: 3, stopToken: 12, rng: &rng) }, "stopToken")
    }
}
