import FineGrain
import FineGrainTrainer
import XCTest

/// The threaded paths (concurrentPerform over rows / heads, with sgemm called from the workers) give
/// exactly the serial results, at sizes large enough to take them.
final class ModelThreadingTests: XCTestCase {
    override func tearDown() { Parallel.maxThreads = 2 }

    func testThreadedAttentionEqualsReference() {
        var rng = SplitMix64(seed: 41)
        let B = 4, T = 64, C = 64, NH = 4
        let qkv = FD.randn(B * T * 3 * C, &rng), dout = FD.randn(B * T * C, &rng)
        Parallel.maxThreads = 2
        var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * NH * T * T)
        Attention.forward(out: &out, att: &att, qkv: qkv, B: B, T: T, C: C, NH: NH)
        var dqkv = [Float](repeating: 0, count: qkv.count)
        Attention.backward(dqkv: &dqkv, dout: dout, qkv: qkv, att: att, B: B, T: T, C: C, NH: NH)
        Parallel.maxThreads = 1
        var outR = [Float](repeating: 0, count: B * T * C), attR = [Float](repeating: 0, count: B * NH * T * T)
        Attention.forwardReference(out: &outR, att: &attR, qkv: qkv, B: B, T: T, C: C, NH: NH)
        var dqkvR = [Float](repeating: 0, count: qkv.count)
        Attention.backwardReference(dqkv: &dqkvR, dout: dout, qkv: qkv, att: attR, B: B, T: T, C: C, NH: NH)
        XCTAssertLessThan(zip(out, outR).map { abs($0 - $1) }.max()!, 1e-4)
        XCTAssertLessThan(zip(dqkv, dqkvR).map { abs($0 - $1) }.max()!, 1e-4)
    }

    func testThreadedModelEqualsSerialBitExactly() throws {
        let config = GPTConfig.small()
        let model = try GPT(config: config, seed: 4)
        var rng = SplitMix64(seed: 5)
        let B = 8, T = 64
        let tokens = (0 ..< B * T).map { _ in Int32(rng.next() % 32) }
        let targets = GPT.nextTokenTargets(tokens: tokens, batch: B, length: T)
        let g = FD.randn(B * T, &rng), e = FD.randn(B * T, &rng, scale: 0.1)
        func run(_ threads: Int) throws -> ([Float], [Float]) {
            Parallel.maxThreads = threads
            let lp = try model.logprobs(tokens: tokens, targets: targets, batch: B, length: T).logprobs
            model.zeroGradients()
            try model.backward(targets: targets, dLogprob: g, dEntropy: e)
            return (lp, model.gradients)
        }
        let serial = try run(1)
        for _ in 0 ..< 3 {
            let threaded = try run(2)
            XCTAssertEqual(threaded.0, serial.0)
            XCTAssertEqual(threaded.1, serial.1)
        }
        var r1 = SplitMix64(seed: 6), r2 = SplitMix64(seed: 6)
        let prompts = (0 ..< B).map { b in Array(tokens[(b * T) ..< (b * T + 4)]) }
        Parallel.maxThreads = 1
        let s1 = try model.sample(prompts: prompts, maxNewTokens: 40, rng: &r1)
        Parallel.maxThreads = 2
        let s2 = try model.sample(prompts: prompts, maxNewTokens: 40, rng: &r2)
        XCTAssertEqual(s1, s2)
    }
}
