import ExtrasBase64
import FineGrain
@testable import FineGrainServer
import Foundation
import NIOCore
import XCTest

/// The fused base64 column codec against the reference (`ExtrasBase64` + a plain conversion loop).
final class Base64ColumnsTests: XCTestCase {
    /// Deterministic doubles with every kind of float32 value: signed, tiny, huge, zero, -0.
    func values(_ n: Int, seed: UInt64) -> [Double] {
        var rng = SplitMix64(seed: seed)
        let specials: [Double] = [0, -0.0, 1, -1, 1e-40, 3.4e38, -2.5e-7]
        return (0 ..< n).map { i in i % 11 == 0 ? specials[i % specials.count] : rng.normal() * 10 }
    }

    func testEncodeMatchesTheReferenceAtEveryLengthRemainder() {
        var checked = 0
        for n in [0, 1, 2, 3, 4, 5, 767, 768, 769, 1536, 2305, 10_000] {
            let v = values(n, seed: UInt64(n))
            var bytes = [UInt8]()
            for x in v { withUnsafeBytes(of: Float(x).bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            let expected = "\"" + Base64.encodeToString(bytes: bytes) + "\""
            var out = ByteBuffer()
            v.withUnsafeBufferPointer { Base64Columns.appendFloat32String($0, to: &out) }
            XCTAssertEqual(String(buffer: out), expected, "\(n) values")
            checked += 1
        }
        print("base64 columns: float32 encode equals ExtrasBase64 on \(checked) lengths (0 ... 10000 values)")
    }

    func testDecodeMatchesTheReferenceForEveryDtype() throws {
        var checked = 0
        for dtype in ["float32", "float64", "int32", "int64", "uint8", "bool"] {
            let size = WireTensor.byteSize[dtype]!
            for n in [0, 1, 2, 3, 5, 383, 384, 385, 1025, 3073, 9000] {
                var rng = SplitMix64(seed: UInt64(n * 31 + size))
                var bytes = [UInt8]()
                var expected = [Double]()
                for _ in 0 ..< n {
                    let r = rng.next()
                    switch dtype {
                    case "float32": let f = Float(rng.normal() * 100); expected.append(Double(f)); withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
                    case "float64": let d = rng.normal(); expected.append(d); withUnsafeBytes(of: d.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
                    case "int32": let k = Int32(truncatingIfNeeded: r); expected.append(Double(k)); withUnsafeBytes(of: k.littleEndian) { bytes.append(contentsOf: $0) }
                    case "int64": let k = Int64(truncatingIfNeeded: r) >> 12; expected.append(Double(k)); withUnsafeBytes(of: k.littleEndian) { bytes.append(contentsOf: $0) }
                    case "uint8": let k = UInt8(truncatingIfNeeded: r); expected.append(Double(k)); bytes.append(k)
                    default: let k = UInt8(r & 1); expected.append(Double(k)); bytes.append(k)
                    }
                }
                let text = Base64.encodeToBytes(bytes: bytes)
                XCTAssertEqual(text.withUnsafeBufferPointer { Base64Columns.decodedCount($0) }, bytes.count)
                let got = text.withUnsafeBufferPointer { Base64Columns.decodeDoubles($0, dtype: dtype, count: n) }
                XCTAssertEqual(got.map { $0.map(\.bitPattern) }, expected.map(\.bitPattern), "\(dtype) x \(n)")
                checked += 1
            }
        }
        print("base64 columns: decode equals ExtrasBase64 + conversion on \(checked) (dtype, length) cases")
    }

    func testDecodeRejectsWhatIsNotStandardBase64() {
        for bad in ["A", "AAA", "AA=A", "=AAA", "AAAA@AAA", "AAAAAAA-", "AA_A", "AAAA====", "A==="] {
            let text = Array(bad.utf8)
            let ok = text.withUnsafeBufferPointer { t -> Bool in
                guard let n = Base64Columns.decodedCount(t) else { return false }
                return Base64Columns.decodeDoubles(t, dtype: "uint8", count: n) != nil
            }
            XCTAssertFalse(ok, "'\(bad)' was accepted")
        }
        // A bad character deep inside a long text (a later chunk) is found too.
        var long = Array(Base64.encodeToBytes(bytes: [UInt8](repeating: 7, count: 30_000)))
        long[20_001] = UInt8(ascii: "*")
        XCTAssertNil(long.withUnsafeBufferPointer { Base64Columns.decodeDoubles($0, dtype: "uint8", count: 30_000) })
    }

    /// The route answers with one tensor when asked to and the returns equal the advantages (GRPO), and with
    /// both when they differ (GAE), whatever the flag.
    func testOmittedReturnsOnlyWhenEqual() throws {
        var b = SyntheticBatch.verlBenchmark(responses: 8, maxLength: 16, group: 4, seed: 3)
        b.oldLogprob = nil; b.refLogprob = nil; b.logprob = nil
        for (estimator, omit, expectReturns) in [("grpo", true, false), ("grpo", false, true), ("gae", true, true)] {
            let body = try ServiceRequests.verlAdvantages(estimator: estimator, batch: b, width: 16, encoding: "base64",
                                                          omitReturnsIfAdvantages: omit)
            let (status, answer) = InProcessService.advantagesRoute(ByteBuffer(bytes: body))
            XCTAssertEqual(status, 200, String(buffer: answer))
            let o = try XCTUnwrap(JSONValue.parse(Data(answer.readableBytesView)).objectValue)
            XCTAssertEqual(o["returns"] != nil, expectReturns, "\(estimator) omit=\(omit)")
            XCTAssertEqual(o["returns_are_advantages"]?.boolValue ?? false, !expectReturns)
            XCTAssertNotNil(o["advantages"]?["data"]?.stringValue)
        }
        let bad = #"{"estimator": "grpo", "omit_returns_if_advantages": 1, "verl": {"response_mask": [[1]], "token_level_rewards": [[1]]}}"#
        let (status, answer) = InProcessService.advantagesRoute(ByteBuffer(string: bad))
        XCTAssertEqual(status, 400)
        XCTAssertTrue(String(buffer: answer).contains("omit_returns_if_advantages"))
    }

    /// A compact uint8 / bool mask decodes straight to bytes; a value above 1 is named by row and column.
    func testCompactMaskIsCheckedByValue() throws {
        func body(_ mask: [UInt8], dtype: String) -> ByteBuffer {
            let m = Base64.encodeToString(bytes: mask)
            return ByteBuffer(string: #"{"estimator": "grpo", "verl": {"response_mask": {"dtype": "\#(dtype)", "shape": [2, 3], "data": "\#(m)"}, "token_level_rewards": [[0, 0, 1], [0, 1, 0]], "index": ["a", "a"]}}"#)
        }
        for dtype in ["uint8", "bool"] {
            let (ok, answer) = InProcessService.advantagesRoute(body([1, 1, 1, 1, 1, 0], dtype: dtype))
            XCTAssertEqual(ok, 200, String(buffer: answer))
        }
        let (status, answer) = InProcessService.advantagesRoute(body([1, 1, 1, 1, 2, 0], dtype: "uint8"))
        XCTAssertEqual(status, 400)
        XCTAssertTrue(String(buffer: answer).contains("verl.response_mask"), String(buffer: answer))
        XCTAssertTrue(String(buffer: answer).contains("row 1 column 1 is 2; must be 0 or 1"), String(buffer: answer))
    }
}
