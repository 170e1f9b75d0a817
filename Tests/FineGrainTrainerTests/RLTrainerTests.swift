import FineGrain
@testable import FineGrainTrainer
import Foundation
import XCTest

/// The RL loop end to end on a tiny model: every built-in method runs, and a run stopped mid-way resumes
/// from its checkpoint to exactly the metrics of an uninterrupted run.
final class RLTrainerTests: XCTestCase {
    static func tinyConfig(method: String = "grpo", steps: Int = 6) -> RLConfig {
        var c = RLConfig()
        c.method = method
        c.task = "addition"; c.taskParameters = ["digits": "2"]
        c.steps = steps; c.promptsPerStep = 2; c.groupSize = 3
        c.evalEvery = 2; c.evalProblems = 6; c.checkpointEvery = 2
        c.warmStartSteps = 3; c.warmStartBatch = 4
        c.dModel = 16; c.nLayers = 1; c.nHeads = 2
        return c
    }

    func tempDir(_ name: String) -> URL {
        let u = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("fg-rl-\(name)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    /// Metrics lines without wall-clock fields.
    func lines(_ dir: URL) throws -> [[String: JSONValue]] {
        try TrainingRun.readMetrics(dir.appendingPathComponent("metrics.jsonl")).map { l in
            l.filter { $0.key != "seconds" && $0.key != "tokens_per_s" }
        }
    }

    func testStoppedRunResumesExactly() throws {
        let config = Self.tinyConfig()
        let a = tempDir("a"), b = tempDir("b")
        _ = try TrainingRun.run(config: config, out: a)
        // Stop after step 3: the last checkpoint is step 2 and metrics.jsonl already has a line for step 3.
        _ = try TrainingRun.run(config: config, out: b, stopAfterStep: 3)
        XCTAssertEqual(try lines(b).count, 4)
        let resumed = try TrainingRun.run(config: config, out: b)
        let la = try lines(a), lb = try lines(b)
        XCTAssertEqual(la.count, config.steps + 1)
        XCTAssertEqual(la, lb, "resumed metrics differ from the uninterrupted run")
        let pa = try TrainerCheckpoint.load(from: a.appendingPathComponent("checkpoint/policy.safetensors"))
        let pb = try TrainerCheckpoint.load(from: b.appendingPathComponent("checkpoint/policy.safetensors"))
        XCTAssertEqual(pa.parameters, pb.parameters, "final parameters differ")
        XCTAssertEqual(pa.optimizerM, pb.optimizerM)
        XCTAssertEqual(resumed.json["steps"], .number(Double(config.steps)))
        print("resume: \(la.count) metric lines and \(pa.parameters.count) parameters identical")
    }

    func testResumeRefusesAnotherConfiguration() throws {
        let out = tempDir("cfg")
        _ = try TrainingRun.run(config: Self.tinyConfig(steps: 2), out: out)
        var other = Self.tinyConfig(steps: 2); other.seed = 5
        XCTAssertThrowsError(try TrainingRun.run(config: other, out: out)) {
            XCTAssertTrue("\($0)".contains("belongs to another configuration"), "\($0)")
        }
    }

    func testEveryBuiltInMethodTrains() throws {
        for recipe in MethodRecipe.builtIn {
            let out = tempDir(recipe.name)
            let s = try TrainingRun.run(config: Self.tinyConfig(method: recipe.name, steps: 2), out: out)
            let l = try lines(out)
            XCTAssertEqual(l.count, 3, recipe.name)
            for key in ["reward_mean", "kl", "entropy", "adv_std", "loss", "grad_norm"] {
                guard let v = l[1][key]?.doubleValue else { XCTFail("\(recipe.name): no \(key)"); continue }
                XCTAssertTrue(v.isFinite, "\(recipe.name): \(key) = \(v)")
            }
            XCTAssertNotNil(s.json["final_accuracy"]?.doubleValue, recipe.name)
            if recipe.needsCritic { XCTAssertNotNil(l[1]["value_loss"], recipe.name) }
            if recipe.signal == .implicitPRM { XCTAssertNotNil(l[1]["prm_loss"], recipe.name) }
        }
    }

    func testBadConfigNamesTheField() {
        var c = Self.tinyConfig(); c.groupSize = 1
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("group_size"), "\($0)") }
        c = Self.tinyConfig(method: "no_such_method")
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("unknown training method 'no_such_method'"), "\($0)") }
    }

    func testPackingMapsResponseTokensToPredictingPositions() throws {
        let p = try PackedSequences(prompts: [[1, 5, 6], [1, 7]], responses: [[8, 2], [9, 9, 2]])
        XCTAssertEqual(p.length, 5)
        XCTAssertEqual(p.tokens, [1, 5, 6, 8, 2, 1, 7, 9, 9, 2])
        // Row 0: token 8 (position 3) is predicted at position 2; row 1: token 9 (position 2) at position 1.
        XCTAssertEqual(p.positions, [2, 3, 6, 7, 8])
        for (n, pos) in p.positions.enumerated() { XCTAssertEqual(p.targets[pos], [8, 2, 9, 9, 2][n]) }
    }
}

/// `finegrain compare` on a tiny configuration: one folder per run, a shared warm start, and a report.
final class ComparisonTests: XCTestCase {
    func testCompareWritesReportAndReusesWarmStart() throws {
        let out = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("fg-compare-\(UUID().uuidString)")
        let base = RLTrainerTests.tinyConfig(steps: 2)
        let paths = try Comparison.run(base: base, methods: ["grpo", "pure"], seeds: [0, 1], out: out, target: .aboveInitial(0.1))
        let fm = FileManager.default
        XCTAssertTrue(paths.contains { $0.hasSuffix("report.html") }, "\(paths)")
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<svg"), "report has no chart")
        XCTAssertTrue(html.contains("grpo") && html.contains("pure"))
        for run in ["grpo-seed0", "pure-seed0", "grpo-seed1", "pure-seed1"] {
            XCTAssertTrue(fm.fileExists(atPath: out.appendingPathComponent("\(run)/summary.json").path), run)
        }
        // One warm start per seed, shared by the methods of that seed.
        let warm = try fm.contentsOfDirectory(atPath: out.appendingPathComponent("warmstart").path).filter { $0.hasSuffix(".safetensors") }
        XCTAssertEqual(warm.count, 2)
        let s0 = try JSONValue.parse(Data(contentsOf: out.appendingPathComponent("grpo-seed0/summary.json")))
        let s1 = try JSONValue.parse(Data(contentsOf: out.appendingPathComponent("pure-seed0/summary.json")))
        XCTAssertEqual(s0["initial_accuracy"], s1["initial_accuracy"], "methods of one seed must start from the same policy")
    }
}
