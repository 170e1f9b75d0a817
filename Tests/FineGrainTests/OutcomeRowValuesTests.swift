import FineGrain
import XCTest

/// `AdvantageOutput.rowValues` is a promise: the advantages are those values broadcast over the mask
/// (+0 at mask-0 tokens) and the returns equal them. Checked for every registered estimator that makes it.
final class OutcomeRowValuesTests: XCTestCase {
    func testEveryRowValuesPromiseHolds() throws {
        var b = SyntheticBatch.verlBenchmark(responses: 24, maxLength: 40, group: 6, seed: 9)
        for i in stride(from: 3, to: b.tokenCount, by: 17) { b.mask[i] = 0 }   // holes, not just padding
        var promised = [String]()
        for name in Registry.estimators.keys.sorted() {
            guard let out = try? Registry.advantages(name, batch: b), let rows = out.rowValues else { continue }
            promised.append(name)
            XCTAssertEqual(rows.count, b.count, name)
            for r in 0 ..< b.count {
                for i in b.range(r) {
                    let expected = b.mask[i] != 0 ? rows[r] : 0
                    if out.advantages[i].bitPattern != expected.bitPattern {
                        XCTFail("\(name): token \(i) of row \(r) is \(out.advantages[i]), row value \(rows[r]), mask \(b.mask[i])"); return
                    }
                }
            }
            XCTAssertEqual(out.returns ?? out.advantages, out.advantages, "\(name): returns differ from the advantages")
        }
        // The outcome estimators do make the promise (so this test can fail when they stop).
        for name in ["grpo", "rloo", "dr_grpo", "trl_grpo"] where Registry.estimators[name] != nil {
            XCTAssertTrue(promised.contains(name), "\(name) sets no rowValues")
        }
        print("row values: promise holds for \(promised.count) estimators: \(promised.joined(separator: ", "))")
    }
}
