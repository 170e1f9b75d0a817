import XCTest
@testable import FineGrain

final class ParamsTests: XCTestCase {
    let specs: [ParamSpec] = [
        .number("gamma", 1.0, "discount"), .integer("k", 4, "count"), .bool("norm", true, "normalise"),
        .string("mode", "a", "mode", choices: ["a", "b"]), .number("opt", nil, "optional"),
    ]

    func testDefaultsAndTypes() throws {
        let p = try Params.resolve(["gamma": .number(0.5), "mode": .string("b")], specs: specs, method: "m")
        XCTAssertEqual(try p.double("gamma"), 0.5)
        XCTAssertEqual(try p.int("k"), 4)
        XCTAssertEqual(try p.bool("norm"), true)
        XCTAssertEqual(try p.string("mode"), "b")
        XCTAssertNil(p.optionalDouble("opt"))
        XCTAssertEqual(ParamValue(parsing: "0.25"), .number(0.25))
        XCTAssertEqual(ParamValue(parsing: "False"), .bool(false))
        XCTAssertEqual(ParamValue(parsing: "token-mean"), .string("token-mean"))
        XCTAssertEqual(ParamValue(parsing: "none"), .string("none"))
        XCTAssertEqual(ParamValue(parsing: "null"), .null)
    }

    func testErrorsNameTheParameter() {
        func reject(_ given: [String: ParamValue], _ name: String, _ fragment: String) {
            XCTAssertThrowsError(try Params.resolve(given, specs: specs, method: "m")) { e in
                guard case let FineGrainError.invalidParameter(n, method, reason) = e else { return XCTFail("\(e)") }
                XCTAssertEqual(n, name); XCTAssertEqual(method, "m")
                XCTAssertTrue(reason.contains(fragment), reason)
            }
        }
        reject(["gama": .number(1)], "gama", "unknown parameter")
        reject(["gamma": .string("x")], "gamma", "expected number")
        reject(["k": .number(1.5)], "k", "expected an integer")
        reject(["mode": .string("c")], "mode", "not one of a, b")
        reject(["gamma": .number(.nan)], "gamma", "NaN")
    }
}

final class VerlLayoutTests: XCTestCase {
    func testPaddedToRaggedAndBack() throws {
        let mask: [[Double]] = [[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
        let b = try VerlLayout.batch(responseMask: mask, groups: [.int(1), .int(1), .int(2)], trimTrailingPadding: true)
        XCTAssertEqual(b.offsets, [0, 2, 5, 5])
        XCTAssertEqual(b.mask, [1, 1, 1, 0, 1])
        let x: [[Double]] = [[1, 2, 9, 9], [3, 4, 5, 9], [9, 9, 9, 9]]
        let r = try VerlLayout.ragged(x, like: b, field: "x")
        XCTAssertEqual(r, [1, 2, 3, 4, 5])
        XCTAssertEqual(VerlLayout.padded(r, like: b, width: 4), [[1, 2, 0, 0], [3, 4, 5, 0], [0, 0, 0, 0]])
        let full = try VerlLayout.batch(responseMask: mask, groups: nil, trimTrailingPadding: false)
        XCTAssertEqual(full.offsets, [0, 4, 8, 12])
    }

    func testBadLayouts() {
        XCTAssertThrowsError(try VerlLayout.batch(responseMask: [[1, 1], [1]], groups: nil, trimTrailingPadding: true)) {
            XCTAssertTrue("\($0)".contains("row 1 has 1 columns"))
        }
        XCTAssertThrowsError(try VerlLayout.batch(responseMask: [[1, 0.5]], groups: nil, trimTrailingPadding: true)) {
            XCTAssertTrue("\($0)".contains("must be 0 or 1"))
        }
        XCTAssertThrowsError(try VerlLayout.batch(responseMask: [[1]], groups: [.int(0), .int(1)], trimTrailingPadding: true)) {
            XCTAssertTrue("\($0)".contains("2 group ids for 1 rows"))
        }
    }
}

final class MaskedStatsTests: XCTestCase {
    func testVerlEpsilons() throws {
        // masked_mean of an all-masked input is 0 (1e-8 denominator), whitening needs >= 2 tokens.
        XCTAssertEqual(MaskedStats.maskedMean([5, 6], [0, 0]), 0)
        XCTAssertEqual(MaskedStats.maskedMean([2, 4, 100], [1, 1, 0]), 6 / (2 + 1e-8), accuracy: 1e-15)
        XCTAssertThrowsError(try MaskedStats.maskedWhiten([1, 2], [1, 0]))
        // Whitening one row of the spec's GAE example: [0.4705, 0.39, 0.2] -> [0.842364, 0.262789, -1.105153].
        let w = try MaskedStats.maskedWhiten([0.4705, 0.39, 0.2], [1, 1, 1])
        for (g, e) in zip(w, [0.842364, 0.262789, -1.105153]) { XCTAssertEqual(g, e, accuracy: 1e-6) }
        // NaN outside the mask never leaks in.
        XCTAssertEqual(MaskedStats.maskedSum([1, .nan, 2], [1, 0, 1]), 3)
    }
}
