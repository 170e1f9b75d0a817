import XCTest
@testable import FineGrain
@testable import FineGrainConformance

/// The runner itself must be able to fail: a wrong number, a wrong NaN, a result where the reference
/// raised, and a missing output are all reported.
final class ConformanceRunnerTests: XCTestCase {
    func testComparatorDetectsMismatches() throws {
        func cmp(_ g: JSONValue, _ w: JSONValue, mask: JSONValue? = nil) -> Bool {
            var p = "x", e = 0.0
            return (try? Conformance.compare(g, w, mask: mask, tol: .float64, path: &p, maxErr: &e)) != nil
        }
        XCTAssertTrue(cmp(.numbers([1, 2]), .numbers([1, 2 + 1e-12])))
        XCTAssertFalse(cmp(.numbers([1, 2]), .numbers([1, 2.001])))
        XCTAssertTrue(cmp(.numbers([.nan]), .array([.string("NaN")])))
        XCTAssertFalse(cmp(.numbers([0]), .array([.string("NaN")])))
        XCTAssertFalse(cmp(.numbers([1]), .numbers([1, 2])))
        XCTAssertTrue(cmp(.numbers([1, 99]), .numbers([1, 2]), mask: .numbers([1, 0])))
        XCTAssertFalse(cmp(.number(.infinity), .string("-Infinity")))
    }

    func testErrorCasesMustThrow() {
        let file = try! makeFile()
        let ok = ConformanceAdapter("f") { _ in ["y": .number(1)] }
        let throwing = ConformanceAdapter("f") { _ in throw FineGrainError.unsupported(method: "f", reason: "bad") }
        let errCase = GoldenCase(id: "f-001", variant: "error/x", inputs: [:], params: [:], outputs: nil)
        let okCase = GoldenCase(id: "f-002", variant: "ok", inputs: [:], params: [:], outputs: ["y": .number(1)])
        if case .success = Conformance.check(errCase, adapter: ok, file: file) { XCTFail("result accepted where the reference raised") }
        if case .failure = Conformance.check(errCase, adapter: throwing, file: file) { XCTFail("rejection not accepted") }
        if case .failure = Conformance.check(okCase, adapter: ok, file: file) { XCTFail("match not accepted") }
        if case .success = Conformance.check(okCase, adapter: throwing, file: file) { XCTFail("throw accepted on a normal case") }
        let missing = ConformanceAdapter("f") { _ in [:] }
        if case .success = Conformance.check(okCase, adapter: missing, file: file) { XCTFail("missing output accepted") }
    }

    func testUnknownFunctionFails() throws {
        let r = Conformance.run(file: try makeFile(function: "no_such_function"))
        XCTAssertFalse(r.ok)
        XCTAssertTrue(r.line.hasPrefix("FAIL"))
    }

    func makeFile(function: String = "f") throws -> GoldenFile {
        let path = NSTemporaryDirectory() + "/fg-golden-\(function).json"
        let doc = "{\"function\": \"\(function)\", \"verl_version\": \"0.9.1\", \"dtype\": \"float64\", \"cases\": [{\"id\": \"f-001\", \"variant\": \"v\", \"inputs\": {}, \"params\": {}, \"outputs\": {\"y\": 1}}]}"
        try doc.write(toFile: path, atomically: true, encoding: .utf8)
        return try GoldenFile(path: path)
    }
}
