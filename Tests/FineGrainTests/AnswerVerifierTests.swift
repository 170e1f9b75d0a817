@testable import FineGrain
import XCTest

/// Hand-worked cases of the built-in verifiers (what each extracts and how it compares).
final class AnswerVerifierTests: XCTestCase {
    func testGSM8KIsVerlStrict() {
        let v = AnswerVerifier.gsm8k
        XCTAssertEqual(v.score(response: "3 + 4 = 7.\n#### 7", label: "7"), 1)
        XCTAssertEqual(v.score(response: "#### 1,234", label: "1234"), 1)            // commas removed
        XCTAssertEqual(v.score(response: "#### 5 then #### 6", label: "6"), 1)       // last match
        XCTAssertEqual(v.score(response: "#### -3", label: "-3"), 1)
        XCTAssertEqual(v.score(response: "the answer is 7", label: "7"), 0)         // strict: needs the marker
        XCTAssertEqual(v.score(response: "####7", label: "7"), 0)                   // needs "#### "
        XCTAssertEqual(v.score(response: "#### 7.0", label: "7"), 0)                // string equality, as verl
        let long = "#### 9 " + String(repeating: "x", count: 400)
        XCTAssertEqual(v.score(response: long, label: "9"), 0)                      // outside the last 300 chars
    }

    func testMathAnswerBoxedThenLastNumber() {
        let v = AnswerVerifier.mathAnswer
        XCTAssertEqual(v.score(response: "so \\boxed{\\frac{1}{2}} and 7", label: "0.5"), 1)
        XCTAssertEqual(v.score(response: "x = \\boxed{{3}}", label: "\\boxed{3}"), 0)   // "{3}" is not "3"
        XCTAssertEqual(v.score(response: "it costs $1,200.", label: "1200"), 1)
        XCTAssertEqual(v.score(response: "about -2.50 units", label: "-2.5"), 1)
        XCTAssertEqual(v.score(response: "3/4 of it", label: "0.75"), 1)
        XCTAssertEqual(v.score(response: "42", label: "41"), 0)
        XCTAssertEqual(v.score(response: "no number here", label: "1"), 0)
        XCTAssertEqual(v.score(response: "\\boxed{x+1}", label: "x + 1"), 1)       // text after removing spaces
    }

    func testExactMatchAndErrors() throws {
        XCTAssertEqual(AnswerVerifier.exactMatch.score(response: "  yes\n", label: "yes"), 1)
        XCTAssertEqual(AnswerVerifier.exactMatch.score(response: "Yes", label: "yes"), 0)
        XCTAssertThrowsError(try AnswerVerifier.named("sympy")) { XCTAssertTrue("\($0)".contains("gsm8k")) }
        XCTAssertThrowsError(try AnswerVerifier.gsm8k.score(responses: ["a", "b"], labels: ["a"])) {
            XCTAssertTrue("\($0)".contains("labels"))
        }
    }
}
