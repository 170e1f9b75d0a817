import ExtrasBase64
import FineGrain
@testable import FineGrainServer
import Foundation
import NIOCore
import XCTest

/// The lossless short forms (`WireShortForms`): each decodes to the dense tensor it stands for, bad ones are
/// named, and `row_values` is chosen only when it reproduces every float32 entry.
final class WireShortFormsTests: XCTestCase {
    func b64<T: FixedWidthInteger>(_ xs: [T]) -> String {
        var d = [UInt8]()
        for x in xs { withUnsafeBytes(of: x.littleEndian) { d.append(contentsOf: $0) } }
        return Base64.encodeToString(bytes: d)
    }
    func b64f(_ xs: [Float]) -> String { b64(xs.map(\.bitPattern)) }

    func testSparseDecodesToTheDenseTensor() throws {
        let o: JSONValue = .object(["dtype": .string("float32"), "shape": .array([.number(2), .number(3)]),
                                    "indices": .string(b64([Int32(2), 4])), "data": .string(b64f([1.5, -2]))])
        let t = try WireTensor.decode(o, field: "verl.token_level_rewards", rank: 2)
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.values, [0, 0, 1.5, 0, -2, 0])
        let i64: JSONValue = .object(["dtype": .string("float64"), "shape": .array([.number(1), .number(4)]), "indices_dtype": .string("int64"),
                                      "indices": .string(b64([Int64(3)])), "data": .string(b64([Double(0.25).bitPattern]))])
        XCTAssertEqual(try WireTensor.decode(i64, field: "f", rank: 2).values, [0, 0, 0, 0.25])
        for (indices, fragment) in [([Int32(4), 2], "strictly increasing"), ([Int32(1), 6], "below 6"), ([Int32(-1), 2], "strictly increasing")] {
            let bad: JSONValue = .object(["dtype": .string("float32"), "shape": .array([.number(2), .number(3)]),
                                          "indices": .string(b64(indices)), "data": .string(b64f([1, 2]))])
            XCTAssertThrowsError(try WireTensor.decode(bad, field: "verl.token_level_rewards", rank: 2)) { e in
                XCTAssertTrue("\(e)".contains("verl.token_level_rewards.indices") && "\(e)".contains(fragment), "\(e)")
            }
        }
        let short: JSONValue = .object(["dtype": .string("float32"), "shape": .array([.number(2), .number(3)]),
                                        "indices": .string(b64([Int32(1), 2])), "data": .string(b64f([1]))])
        XCTAssertThrowsError(try WireTensor.decode(short, field: "r", rank: 2)) { e in XCTAssertTrue("\(e)".contains("r.data") && "\(e)".contains("shape [2] of float32 needs 8"), "\(e)") }
    }

    func testLengthsMaskDecodesToTheRightPaddedMask() throws {
        let o: JSONValue = .object(["shape": .array([.number(3), .number(4)]), "lengths": .string(b64([Int32(4), 0, 2]))])
        let m = try WireTensor.decodeMask(o, field: "verl.response_mask")
        XCTAssertEqual(m.shape, [3, 4])
        XCTAssertEqual(m.mask, [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0])
        for (lengths, fragment) in [([Int32(5), 0, 0], "row 0 is 5; must be in 0 ... 4"), ([Int32(1), 1], "2 entries for 3 rows"),
                                    ([Int32(1), -1, 0], "row 1 is -1")] {
            let bad: JSONValue = .object(["shape": .array([.number(3), .number(4)]), "lengths": .string(b64(lengths))])
            XCTAssertThrowsError(try WireTensor.decodeMask(bad, field: "verl.response_mask")) { e in
                XCTAssertTrue("\(e)".contains("verl.response_mask.lengths") && "\(e)".contains(fragment), "\(e)")
            }
        }
    }

    func testRowValuesOnlyWhenExact() {
        let mask: [UInt8] = [1, 1, 0, 1, 0, 0]
        XCTAssertEqual(WireTensor.rowValues([0.5, 0.5, 0, -1, 0, 0], mask: mask, rows: 2, width: 3), [0.5, -1])
        XCTAssertNil(WireTensor.rowValues([0.5, 0.25, 0, -1, 0, 0], mask: mask, rows: 2, width: 3), "two values in a row")
        XCTAssertNil(WireTensor.rowValues([0.5, 0.5, 0.1, -1, 0, 0], mask: mask, rows: 2, width: 3), "non-zero padding")
        XCTAssertEqual(WireTensor.rowValues([0, 0, 0, 0, 0, 0], mask: [0, 0, 0, 1, 1, 1], rows: 2, width: 3), [0, 0], "empty row")
        // Differences below float32 resolution are the same float32 value: what the dense answer would carry too.
        XCTAssertEqual(WireTensor.rowValues([1, 1 + 1e-12, 0, 2, 0, 0], mask: mask, rows: 2, width: 3), [1, 2])
    }

    /// The whole route with the Python client's default forms: sparse rewards, a lengths mask, per-row answers.
    func testShortRequestEqualsTheDenseOne() throws {
        var b = SyntheticBatch.verlBenchmark(responses: 16, maxLength: 24, group: 4, seed: 5)
        b.oldLogprob = nil; b.refLogprob = nil; b.logprob = nil; b.value = nil
        let dense = try ServiceRequests.verlAdvantages(estimator: "grpo", batch: b, width: 24, encoding: "base64")
        let short = try ServiceRequests.verlAdvantages(estimator: "grpo", batch: b, width: 24, encoding: "short")
        XCTAssertLessThan(short.count * 4, dense.count, "short \(short.count) bytes vs dense \(dense.count)")
        let doc = try XCTUnwrap(JSONValue.parse(short).objectValue)
        XCTAssertNotNil(doc["verl"]?["response_mask"]?["lengths"], "a right-padded mask travels as lengths")
        XCTAssertNotNil(doc["verl"]?["token_level_rewards"]?["indices"], "outcome rewards travel sparse")
        let (s1, a1) = InProcessService.advantagesRoute(ByteBuffer(bytes: dense))
        let (s2, a2) = InProcessService.advantagesRoute(ByteBuffer(bytes: short))
        XCTAssertEqual(s1, 200); XCTAssertEqual(s2, 200)
        XCTAssertLessThan(a2.readableBytes * 10, a1.readableBytes, "answer \(a2.readableBytes) vs \(a1.readableBytes) bytes")
        let o1 = try XCTUnwrap(JSONValue.parse(Data(a1.readableBytesView)).objectValue)
        let o2 = try XCTUnwrap(JSONValue.parse(Data(a2.readableBytesView)).objectValue)
        let full = (0 ..< 16).flatMap { r in (0 ..< 24).map { t in UInt8(t < b.length(r) ? b.mask[b.offsets[r] + t] : 0) } }
        let d = try ServiceRequests.tensor(XCTUnwrap(o1["advantages"]), field: "a")
        let s = try ServiceRequests.tensor(XCTUnwrap(o2["advantages"]), field: "a", mask: full)
        XCTAssertEqual(d.shape, s.shape)
        XCTAssertEqual(d.values.map { Float($0) }, s.values.map { Float($0) })
        print("short forms: request \(short.count) vs \(dense.count) bytes, answer \(a2.readableBytes) vs \(a1.readableBytes) bytes, advantages equal")
    }
}
