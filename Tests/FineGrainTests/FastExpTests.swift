import Foundation
import XCTest
@testable import FineGrain

final class FastExpTests: XCTestCase {
    func testMatchesLibmOverTheRange() {
        var worst = 0.0
        var x = -700.0
        while x <= 700 {
            let e = Foundation.exp(x), f = fastExp(x)
            worst = max(worst, abs(f - e) / e)
            x += 0.0137
        }
        for x in [0.0, -0.0, 1e-12, -1e-12, 0.34657359, -0.34657359, 20, -20, 1, -1] {
            worst = max(worst, abs(fastExp(x) - Foundation.exp(x)) / Foundation.exp(x))
        }
        print("fastExp: max relative error vs libm \(worst)")
        XCTAssertLessThan(worst, 1e-15)
    }

    func testK3ValuesEqualTheRegisteredEstimator() throws {
        var rng = SplitMix64(seed: 3)
        let lp = (0 ..< 100_000).map { _ in -abs(rng.normal()) * 3 }
        let ref = lp.enumerated().map { i, x in i % 97 == 0 ? x + 30 : x + rng.normal() }   // some hit the clamps
        let full = try Registry.kl("low_var_kl").compute(lp, ref)
        XCTAssertEqual(try KLPenalty.k3Values(lp, ref), full.values)
    }
}
