import Foundation
import XCTest
@testable import FineGrainConformance

/// Locates `shared/` (the golden files): `$FINEGRAIN_SHARED`, else `../shared` beside the repository root.
enum SharedFolder {
    static var url: URL {
        if let env = ProcessInfo.processInfo.environment["FINEGRAIN_SHARED"] { return URL(fileURLWithPath: env) }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared")
    }
    static func golden(_ sub: String) -> URL { url.appendingPathComponent("golden").appendingPathComponent(sub) }
    static func files(_ sub: String) -> [String] {
        let dir = golden(sub)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().map { dir.appendingPathComponent($0).path }
    }
}

/// Asserts that golden file `shared/golden/<sub>/<stem>.json` passes, printing its PASS/FAIL line.
/// A missing file fails (the golden files are the evidence, not an optional extra).
func assertGoldenPasses(_ sub: String, _ stem: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let name = stem.hasSuffix(".json") ? stem : stem + ".json"
    let path = SharedFolder.golden(sub).appendingPathComponent(name).path
    guard FileManager.default.fileExists(atPath: path) else {
        return XCTFail("golden file not found: \(path) (set FINEGRAIN_SHARED to the shared/ folder)", file: file, line: line)
    }
    let result = Conformance.run(file: try GoldenFile(path: path))
    print(result.line)
    XCTAssertTrue(result.ok, result.line, file: file, line: line)
    XCTAssertGreaterThan(result.total, 0, file: file, line: line)
}

/// `finegrain conformance shared/golden/verl/*.json`, as a test: every verl file must PASS.
final class GoldenSuiteTests: XCTestCase {
    func testEveryVerlFilePasses() throws {
        let files = SharedFolder.files("verl")
        XCTAssertFalse(files.isEmpty, "no golden files at \(SharedFolder.golden("verl").path); set FINEGRAIN_SHARED")
        var failures = [String]()
        for path in files {
            let r = Conformance.run(file: try GoldenFile(path: path))
            print(r.line)
            if !r.ok { failures.append(r.line) }
        }
        XCTAssertEqual(failures, [], "golden files failing")
    }
}
