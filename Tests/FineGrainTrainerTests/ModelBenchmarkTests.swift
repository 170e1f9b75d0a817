import FineGrainTrainer
import Foundation
import XCTest

/// Smoke test of the benchmark; with FINEGRAIN_BENCH=1 (run in release) it prints the real numbers:
/// `FINEGRAIN_BENCH=1 swift test -c release --filter ModelBenchmarkTests`.
final class ModelBenchmarkTests: XCTestCase {
    func testBenchmarkRuns() throws {
        let env = ProcessInfo.processInfo.environment
        if env["FINEGRAIN_BENCH"] == "1" {
            let config = GPTConfig.small()
            let batch = Int(env["FINEGRAIN_BENCH_BATCH"] ?? "") ?? 16, length = Int(env["FINEGRAIN_BENCH_LENGTH"] ?? "") ?? 64
            for (blas, ours) in [(2, 2), (1, 2), (2, 1), (1, 1)] {
                ModelBenchmark.setBLASThreads(blas)
                Parallel.maxThreads = ours
                print(try ModelBenchmark.report(config: config, batch: batch, length: length, repeats: 10))
            }
            ModelBenchmark.setBLASThreads(2)
            Parallel.maxThreads = 2
        } else {
            let r = try ModelBenchmark.run(config: .tiny, batch: 2, length: 5, repeats: 1)
            XCTAssertGreaterThan(r.fwdBwdTokensPerSec, 0)
            XCTAssertGreaterThan(r.sampleTokensPerSec, 0)
            let m = ModelBenchmark.matmulEfficiency(config: .tiny, batch: 2, length: 5, repeats: 1)
            XCTAssertEqual(m.count, 2)
        }
    }
}
