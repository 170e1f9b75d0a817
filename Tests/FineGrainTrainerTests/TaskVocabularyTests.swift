import FineGrain
@testable import FineGrainTrainer
import XCTest

final class TaskVocabularyTests: XCTestCase {
    func testEncodeDecodeRoundTrip() throws {
        let v = try Vocabulary("0123456789+=;")
        XCTAssertEqual(v.size, 16)
        let ids = try v.encode("347+285=")
        XCTAssertEqual(ids.first, 6)  // '3' is symbol 3, id 3 + 3
        XCTAssertEqual(try v.decode(ids), "347+285=")
        XCTAssertEqual(try v.decode([Vocabulary.bos] + ids + [Vocabulary.eos, Vocabulary.pad]), "<bos>347+285=<eos><pad>")
        XCTAssertEqual(try v.decode([Vocabulary.bos] + ids + [Vocabulary.eos], skipSpecial: true), "347+285=")
    }

    func testErrorsNameTheBadSymbolAndId() throws {
        let v = try Vocabulary("ab")
        XCTAssertThrowsError(try v.encode("abc")) { e in
            XCTAssertEqual(e as? FineGrainError, .invalidField(field: "text", reason: "symbol 'c' is not in the vocabulary"))
        }
        XCTAssertThrowsError(try v.decode([3, 9])) { e in
            XCTAssertTrue("\(e)".contains("tokens[1]") && "\(e)".contains("9"), "\(e)")
        }
        XCTAssertThrowsError(try v.decode([-1]))
        XCTAssertEqual(v.render([3, 9, 2]), "a<?9><eos>")
        XCTAssertThrowsError(try Vocabulary("aba")) { e in XCTAssertTrue("\(e)".contains("'a' appears twice")) }
    }

    func testCatalog() throws {
        XCTAssertEqual(try TaskCatalog.make("addition").name, "addition")
        XCTAssertEqual(try TaskCatalog.make("path", parameters: ["layers": "3", "width": "2"]).maxResponseLength, 4)
        let add = try TaskCatalog.make("addition", parameters: ["digits": "2-3", "carry": "own"])
        XCTAssertEqual((add.base as? AdditionTask)?.digits, 2 ... 3)
        XCTAssertEqual((add.base as? AdditionTask)?.carryGrading, .ownCarry)
        XCTAssertThrowsError(try TaskCatalog.make("sorting")) { e in
            XCTAssertEqual(e as? FineGrainError, .unknownMethod(kind: "task", name: "sorting", known: ["addition", "path"]))
        }
        XCTAssertThrowsError(try TaskCatalog.make("addition", parameters: ["width": "3"]))
        XCTAssertThrowsError(try TaskCatalog.make("addition", parameters: ["digits": "x"]))
        XCTAssertThrowsError(try TaskCatalog.make("addition", parameters: ["digits": "0-3"]))
        XCTAssertThrowsError(try TaskCatalog.make("path", parameters: ["width": "9"]))
    }

    func testErasedTaskRejectsForeignProblems() throws {
        let add = try TaskCatalog.make("addition"), path = try TaskCatalog.make("path")
        var rng = SplitMix64(seed: 1)
        let p = path.sampleProblem(rng: &rng)
        XCTAssertEqual(add.prompt(p), [Vocabulary.bos])
        XCTAssertEqual(add.score(p, response: [2]).outcome, 0)
        XCTAssertThrowsError(try add.demonstration(p, noise: 0, rng: &rng))
        let q = add.sampleProblem(rng: &rng)
        XCTAssertNotEqual(p, q)
        XCTAssertEqual(q, q)
        XCTAssertEqual(add.score(q, response: try add.demonstration(q, noise: 0, rng: &rng)).outcome, 1)
    }
}
