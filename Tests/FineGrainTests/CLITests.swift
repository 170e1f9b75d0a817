import FineGrainTrainer
import Foundation
import XCTest

/// Runs the `finegrain` executable that `swift test` built beside the test bundle (or `$FINEGRAIN_BIN`).
enum CLIRunner {
    static var binary: URL {
        if let b = ProcessInfo.processInfo.environment["FINEGRAIN_BIN"] { return URL(fileURLWithPath: b) }
        var dir = Bundle(for: CLITests.self).bundleURL
        if dir.pathExtension == "xctest" { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("finegrain")
    }
    static var repo: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    static func run(_ args: [String], stdin: String? = nil) throws -> (code: Int32, out: String, err: String) {
        guard FileManager.default.fileExists(atPath: binary.path) else {
            XCTFail("finegrain binary not built at \(binary.path)")
            return (-1, "", "")
        }
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = repo
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out; p.standardError = err; p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

/// The CLI as a user runs it: real process, real files, exit codes and messages.
final class CLITests: XCTestCase {
    var repo: URL { CLIRunner.repo }
    func run(_ args: [String], stdin: String? = nil) throws -> (code: Int32, out: String, err: String) {
        try CLIRunner.run(args, stdin: stdin)
    }

    func testAdvantagesFromStdinToStdout() throws {
        let input = "{\"group\": \"a\", \"tokens\": [1, 2], \"reward\": 1}\n{\"group\": \"a\", \"tokens\": [3], \"reward\": 0, \"note\": \"x\"}\n"
        let r = try run(["advantages", "--estimator", "grpo"], stdin: input)
        XCTAssertEqual(r.code, 0, r.err)
        let lines = r.out.split(separator: "\n")
        guard lines.count == 2 else { return XCTFail("expected 2 lines, got: \(r.out)") }
        // [1, 0] -> +-(0.5 / (0.7071068 + 1e-6)): every token of a response gets its sequence advantage.
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        let second = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as! [String: Any]
        let a0 = first["advantages"] as! [Double], a1 = second["advantages"] as! [Double]
        XCTAssertEqual(a0.count, 2); XCTAssertEqual(a1.count, 1)
        XCTAssertEqual(a0[0], 0.5 / (0.5.squareRoot() + 1e-6), accuracy: 1e-12)
        XCTAssertEqual(a0[1], a0[0]); XCTAssertEqual(a1[0], -a0[0], accuracy: 1e-12)
        XCTAssertEqual(second["note"] as? String, "x")
    }

    func testBadInputIsAOneLineErrorNamingTheField() throws {
        let r = try run(["advantages", "--estimator", "gae"], stdin: "{\"group\": 1, \"tokens\": [1, 2], \"reward\": 1}\n")
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.err.contains("missing field 'values': required by 'gae'"), r.err)
        let nan = try run(["advantages", "--estimator", "grpo"], stdin: "{\"group\": 1, \"tokens\": [1], \"reward\": \"NaN\"}\n")
        XCTAssertEqual(nan.code, 1)
        XCTAssertTrue(nan.err.contains("invalid field 'reward'"), nan.err)
        let unknown = try run(["advantages", "--estimator", "nope"], stdin: "{\"group\": 1, \"tokens\": [1], \"reward\": 1}\n")
        XCTAssertEqual(unknown.code, 1)
        XCTAssertTrue(unknown.err.contains("unknown estimator 'nope'; known:"), unknown.err)
        let badParam = try run(["advantages", "--estimator", "grpo", "--param", "epsilonn=1"], stdin: "{\"group\": 1, \"tokens\": [1], \"reward\": 1}\n")
        XCTAssertEqual(badParam.code, 1)
        XCTAssertTrue(badParam.err.contains("invalid parameter 'epsilonn' for 'grpo': unknown parameter"), badParam.err)
    }

    func testMethodsListsEveryKindWithPapers() throws {
        let r = try run(["methods", "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        let doc = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        let methods = doc["methods"] as! [[String: Any]]
        let names = Set(methods.map { $0["name"] as! String })
        for n in ["gae", "grpo", "rloo", "vanilla", "gspo", "value_loss", "k3", "low_var_kl+"] { XCTAssertTrue(names.contains(n), n) }
        for m in methods {
            let paper = m["paper"] as! [String: Any]
            XCTAssertFalse((paper["title"] as! String).isEmpty, "\(m["name"]!) has no paper")
            XCTAssertFalse((m["formula"] as! String).isEmpty, "\(m["name"]!) has no formula")
        }
    }

    func testConformanceExitCodes() throws {
        let shared = ProcessInfo.processInfo.environment["FINEGRAIN_SHARED"] ?? repo.deletingLastPathComponent().appendingPathComponent("shared").path
        let ok = try run(["conformance", shared + "/golden/verl/grpo.json"])
        XCTAssertEqual(ok.code, 0, ok.out)
        XCTAssertTrue(ok.out.hasPrefix("PASS grpo.json 28/28 max_abs_err="), ok.out)
        // A file whose reference outputs were tampered with must FAIL and exit non-zero.
        let text = try String(contentsOfFile: shared + "/golden/verl/rloo.json", encoding: .utf8)
        let doc = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        var cases = doc["cases"] as! [[String: Any]]
        var outputs = cases[0]["outputs"] as! [String: Any]
        var adv = outputs["advantages"] as! [[Double]]
        adv[0][0] += 0.5
        outputs["advantages"] = adv; cases[0]["outputs"] = outputs
        var tampered = doc; tampered["cases"] = cases
        let path = NSTemporaryDirectory() + "/fg-tampered-rloo.json"
        try JSONSerialization.data(withJSONObject: tampered).write(to: URL(fileURLWithPath: path))
        let bad = try run(["conformance", path])
        XCTAssertEqual(bad.code, 1)
        XCTAssertTrue(bad.out.hasPrefix("FAIL fg-tampered-rloo.json"), bad.out)
        XCTAssertTrue(bad.out.contains("first_failure=rloo-"), bad.out)
    }

    func testDemoPrintsATable() throws {
        let r = try run(["demo"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("12 responses in 3 groups"), r.out)
        XCTAssertTrue(r.out.contains("grpo"), r.out)
    }
}

/// `finegrain train` killed with SIGKILL at an arbitrary moment resumes from its last checkpoint and ends
/// with exactly the metrics of a run that was never stopped.
final class CLIResumeTests: XCTestCase {
    func testKilledTrainingResumesExactly() throws {
        let cli = CLIRunner.self
        let base = NSTemporaryDirectory() + "/fg-kill-\(UUID().uuidString)"
        let args = ["train", "--task-param", "digits=2", "--steps", "16", "--prompts", "2", "--group", "3", "--eval-every", "4",
                    "--eval-problems", "6", "--checkpoint-every", "3", "--warm-start-steps", "3", "--warm-start-batch", "4",
                    "--d-model", "16", "--layers", "1", "--heads", "2"]
        let a = try cli.run(args + ["--out", base + "/a"])
        XCTAssertEqual(a.code, 0, a.err)

        // Start the same run, kill it once it has written a few steps, then run the command again.
        let p = Process()
        p.executableURL = cli.binary
        p.arguments = args + ["--out", base + "/b"]
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        let metrics = base + "/b/metrics.jsonl"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: metrics, encoding: .utf8), text.split(separator: "\n").count >= 6 { break }
            usleep(2000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let killedAt = ((try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "").split(separator: "\n").count - 1
        let b = try cli.run(args + ["--out", base + "/b"])
        XCTAssertEqual(b.code, 0, b.err)

        func lines(_ dir: String) throws -> [String] {
            let text = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
            return try text.split(separator: "\n").map { line in
                var o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                o["seconds"] = nil; o["tokens_per_s"] = nil
                return String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
            }
        }
        let la = try lines(base + "/a"), lb = try lines(base + "/b")
        XCTAssertEqual(la.count, 17)
        XCTAssertEqual(la, lb, "killed at step \(killedAt) and resumed: metrics differ from the uninterrupted run")
        // Tensors must match bit for bit (the metadata differs only in wall-clock time).
        let pa = try TrainerCheckpoint.load(from: URL(fileURLWithPath: base + "/a/checkpoint/policy.safetensors"))
        let pb = try TrainerCheckpoint.load(from: URL(fileURLWithPath: base + "/b/checkpoint/policy.safetensors"))
        XCTAssertEqual(pa.parameters, pb.parameters, "final parameters differ")
        XCTAssertEqual(pa.optimizerM, pb.optimizerM); XCTAssertEqual(pa.optimizerV, pb.optimizerV)
        XCTAssertEqual(pa.rngState, pb.rngState)
        print("killed at step \(killedAt), resumed: \(la.count) metric lines and the final checkpoint identical")
    }
}
