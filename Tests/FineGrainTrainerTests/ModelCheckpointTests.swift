import FineGrain
import FineGrainTrainer
import Foundation
import XCTest

final class ModelCheckpointTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fg-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func trainedFixture() throws -> (GPT, AdamW, SplitMix64) {
        let model = try GPT(config: .tiny, seed: 8)
        let opt = try AdamW(layout: model.layout, beta1: 0.8, beta2: 0.9, eps: 1e-7, weightDecay: 0.05)
        let tokens: [Int32] = [1, 2, 3, 4, 5]
        let targets = GPT.nextTokenTargets(tokens: tokens, batch: 1, length: 5)
        for _ in 0 ..< 3 {
            model.zeroGradients()
            _ = try model.supervisedStep(tokens: tokens, targets: targets, weights: [1, 1, 1, 1, 0], batch: 1, length: 5)
            try opt.update(parameters: &model.parameters, gradients: model.gradients, learningRate: 0.01)
        }
        var rng = SplitMix64(seed: 99)
        _ = rng.next()
        return (model, opt, rng)
    }

    func testRoundTripIsBitExact() throws {
        let (model, opt, rng) = try trainedFixture()
        let ck = TrainerCheckpoint(model: model, optimizer: opt, rngState: [rng.state, 12345],
                                   metadata: ["task": "addition", "method": "grpo", "note": "quote \" and\nnewline"])
        let url = dir.appendingPathComponent("ck.safetensors")
        try ck.save(to: url)
        try ck.save(to: url) // overwrite atomically
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(files, ["ck.safetensors"], "no temporary files are left behind")
        if let keep = ProcessInfo.processInfo.environment["FINEGRAIN_KEEP_CHECKPOINT"] {
            // for checking by hand that Python's safetensors reads the file
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: url.path, toPath: keep)
        }
        let back = try TrainerCheckpoint.load(from: url)
        XCTAssertEqual(back, ck)
        XCTAssertEqual(back.parameters.map(\.bitPattern), model.parameters.map(\.bitPattern))
        XCTAssertEqual(back.optimizerV!.map(\.bitPattern), opt.v.map(\.bitPattern))
        XCTAssertEqual(back.optimizerStep, 3)
        XCTAssertEqual(back.rngState, [rng.state, 12345])
        XCTAssertEqual(back.metadata["note"], "quote \" and\nnewline")
        let restored = try back.makeModel()
        XCTAssertEqual(try restored.forward(tokens: [1, 2, 3], batch: 1, length: 3), try model.forward(tokens: [1, 2, 3], batch: 1, length: 3))
        let opt2 = try XCTUnwrap(try back.makeOptimizer())
        XCTAssertEqual(opt2.m, opt.m)
        XCTAssertEqual(opt2.step, opt.step)
        XCTAssertEqual(opt2.beta1, 0.8)
        // header layout: 8-byte little-endian length, JSON, data; header padded to 8 bytes
        let bytes = [UInt8](try Data(contentsOf: url))
        let n = bytes[0 ..< 8].enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        XCTAssertEqual(n % 8, 0)
        XCTAssertEqual(bytes[8], UInt8(ascii: "{"))
        // model-only checkpoint
        let url2 = dir.appendingPathComponent("model.safetensors")
        try TrainerCheckpoint(model: model).save(to: url2)
        let m2 = try TrainerCheckpoint.load(from: url2)
        XCTAssertNil(m2.optimizerM)
        XCTAssertNil(try m2.makeOptimizer())
    }

    func error(loading bytes: [UInt8]) -> String {
        let url = dir.appendingPathComponent("bad-\(UUID().uuidString).safetensors")
        try! Data(bytes).write(to: url)
        do { _ = try TrainerCheckpoint.load(from: url); return "no error" } catch { return "\(error)" }
    }

    func testCorruptedOrTruncatedFilesGiveClearErrors() throws {
        let (model, opt, _) = try trainedFixture()
        let url = dir.appendingPathComponent("ck.safetensors")
        try TrainerCheckpoint(model: model, optimizer: opt, rngState: [1]).save(to: url)
        let good = [UInt8](try Data(contentsOf: url))
        // truncated inside the data section: the last tensor (rng.state) is out of bounds and is named
        let e1 = error(loading: Array(good.dropLast(4)))
        XCTAssertTrue(e1.contains("'rng.state'") && e1.contains("data_offsets"), e1)
        // truncated inside the header
        let e2 = error(loading: Array(good.prefix(40)))
        XCTAssertTrue(e2.contains("header length"), e2)
        let e3 = error(loading: [1, 2, 3])
        XCTAssertTrue(e3.contains("too short"), e3)
        // header bytes are not JSON
        var garbled = good
        garbled[9] = UInt8(ascii: "#")
        XCTAssertTrue(error(loading: garbled).contains("not valid JSON"))
        // a tensor's shape disagrees with its byte span
        let (tensors, meta) = try SafeTensors.decode(good)
        var t2 = tensors
        let i = t2.firstIndex { $0.name == "model.wpe" }!
        t2[i].shape = [4, 8]
        t2[i].data = Array(t2[i].data.prefix(4 * 8 * 4))
        let e4 = error(loading: try SafeTensors.encode(t2, metadata: meta))
        XCTAssertTrue(e4.contains("'model.wpe'") && e4.contains("shape"), e4)
        // missing tensor
        let e5 = error(loading: try SafeTensors.encode(tensors.filter { $0.name != "model.ln_f.bias" }, metadata: meta))
        XCTAssertTrue(e5.contains("'model.ln_f.bias'") && e5.contains("missing"), e5)
        // not our format
        let e6 = error(loading: try SafeTensors.encode(tensors, metadata: [:]))
        XCTAssertTrue(e6.contains("format"), e6)
        // reserved metadata keys are refused on save
        XCTAssertThrowsError(try TrainerCheckpoint(model: model, metadata: ["config": "x"]).save(to: url))
        XCTAssertThrowsError(try SafeTensors.encode([.float32("a", shape: [2], [1])], metadata: [:]))
    }

    func testGenericSafeTensorsRoundTrip() throws {
        let ts: [SafeTensor] = [.float32("w", shape: [2, 2], [1, -2, 3.5, .infinity]), .uint64("s", shape: [2], [UInt64.max, 7]),
                                .int64("i", shape: [1], [-5]), .float32("empty", shape: [0, 3], [])]
        let bytes = try SafeTensors.encode(ts, metadata: ["k": "v"])
        let (back, meta) = try SafeTensors.decode(bytes)
        XCTAssertEqual(back, ts)
        XCTAssertEqual(meta, ["k": "v"])
        XCTAssertEqual(try back[1].uint64s(), [UInt64.max, 7])
        XCTAssertEqual(try back[2].int64s(), [-5])
        XCTAssertThrowsError(try back[1].floats())
    }
}
