@testable import FineGrain
import Foundation
import XCTest

/// The byte-level JSON reader/writer against Foundation's `JSONSerialization` on the same documents, plus
/// the cases the fast paths must get exactly right.
final class JSONTextTests: XCTestCase {
    func parse(_ s: String) throws -> JSONValue { try JSONText.parse(Data(s.utf8)) }

    func testNumbersAreCorrectlyRounded() throws {
        var rng = SplitMix64(seed: 3)
        var texts = ["0", "-0", "1", "-1", "0.1", "1e-06", "1E+3", "123456789012345678901234567890", "0.30000000000000004",
                     "2.2250738585072014e-308", "5e-324", "1.7976931348623157e308", "9007199254740993", "1e22", "1e23", "-12.5e-3"]
        for _ in 0 ..< 2000 {
            let x = (rng.uniform() - 0.5) * pow(10, Double(Int(rng.next() % 40)) - 20)
            texts.append(x.description); texts.append(String(format: "%.17g", x)); texts.append(String(format: "%.6f", x))
        }
        for t in texts {
            XCTAssertEqual(try parse(t).doubleValue, strtod(t, nil), t)
        }
    }

    func testStringsEscapesAndStructure() throws {
        let doc = #"{"a": [1, 2.5, true, false, null, "x\"y\\z\/\n\t\u00e9\ud83d\ude00"], "b": {"c": []}, "": {}}"#
        let v = try parse(doc)
        XCTAssertEqual(v["a"]?.arrayValue?.last?.stringValue, "x\"y\\z/\n\té😀")
        XCTAssertEqual(v["b"]?["c"], .array([]))
        // Round trip through the writer, and equality with Foundation's reading of the written text.
        let text = try v.serialized()
        XCTAssertEqual(try JSONText.parse(text), v)
        let foundation = try JSONSerialization.jsonObject(with: text) as? [String: Any]
        XCTAssertEqual((foundation?["a"] as? [Any])?.count, 6)
        XCTAssertEqual(String(decoding: try JSONValue.object(["k": .number(.nan), "a": .number(1), "b": .number(0.1)]).serialized(), as: UTF8.self),
                       #"{"a":1,"b":0.1,"k":"NaN"}"#)
    }

    func testMalformedDocumentsSayWhere() {
        for (text, fragment) in [("{\"a\": 1,}", "expected a string key"), ("[1, 2", "end of input"), ("[01]", "leading zero"),
                                 ("{\"a\" 1}", "expected ':'"), ("\"abc", "unterminated string"), ("[1.]", "after '.'"),
                                 ("[1] x", "trailing"), ("nul", "end of input"), ("nuLL", "invalid literal"), ("[\"\\ud800\"]", "surrogate"), ("[NaN]", "expected a value")] {
            XCTAssertThrowsError(try parse(text), text) { XCTAssertTrue("\($0)".contains(fragment), "\(text): \($0)") }
        }
    }
}

extension JSONTextTests {
    /// The word-at-a-time escape test against the plain per-byte definition, on every byte value at every
    /// position of short and long buffers.
    func testNeedsEscapeMatchesTheDefinition() {
        for length in [1, 7, 8, 9, 16, 33] {
            for pos in 0 ..< length {
                for b in 0 ... 255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "A"), count: length)
                    bytes[pos] = UInt8(b)
                    let expected = b < 0x20 || b == 0x22 || b == 0x5C
                    let got = bytes.withUnsafeBufferPointer { JSONText.needsEscape($0) }
                    if got != expected { XCTFail("byte \(b) at \(pos) of \(length): \(got)"); return }
                }
            }
        }
    }

    func testHasControlByteMatchesTheDefinition() {
        for length in [1, 7, 8, 31, 32, 33, 65] {
            for pos in 0 ..< length {
                for b in [0, 1, 0x1F, 0x20, 0x21, 0x22, 0x5C, 0x7F, 0x80, 0xFF] {
                    var bytes = [UInt8](repeating: UInt8(ascii: "A"), count: length)
                    bytes[pos] = UInt8(b)
                    let got = bytes.withUnsafeBufferPointer { JSONText.hasControlByte($0) }
                    if got != (b < 0x20) { XCTFail("byte \(b) at \(pos) of \(length): \(got)"); return }
                }
            }
        }
        // The reader's fast path (memchr + this check) still rejects raw control bytes and decodes escapes.
        let long = String(repeating: "x", count: 40)
        XCTAssertThrowsError(try JSONValue.parse(Data("\"\(long)\u{01}\(long)\"".utf8)))
        XCTAssertEqual(try JSONValue.parse(Data("\"\(long)\\n\(long)\"".utf8)).stringValue, long + "\n" + long)
        XCTAssertEqual(try "[\"ab\"]".utf8CString.withUnsafeBytes { try JSONValue.parse(bytes: UnsafeRawBufferPointer(rebasing: $0.dropLast())) },
                       .array([.string("ab")]))
    }
}
