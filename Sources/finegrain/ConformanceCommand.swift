import ArgumentParser
import FineGrain
import FineGrainConformance
import Foundation

struct ConformanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Run golden reference files (verl and paper files) through FineGrain's implementation.",
        discussion: "Prints one PASS/FAIL line per file; exits non-zero if any case fails or any function is unknown. Cases whose outputs are null must be rejected with an error, and pass only then."
    )

    @Argument(help: "Golden JSON files.")
    var files: [String]

    @Flag(name: .long, help: "Also print every failing case.")
    var verbose = false

    func run() throws {
        var failed = false
        for path in files {
            let file: GoldenFile
            do { file = try GoldenFile(path: path) } catch {
                print("FAIL \((path as NSString).lastPathComponent) unreadable: \(error)")
                failed = true; continue
            }
            let result = Conformance.run(file: file)
            print(result.line)
            if !result.ok {
                failed = true
                if verbose, let adapter = Conformance.adapter(for: file) {
                    for c in file.cases {
                        if case let .failure(m) = Conformance.check(c, adapter: adapter, file: file) { print("    \(c.id) [\(c.variant)]: \(m.text)") }
                    }
                }
            }
        }
        if failed { throw ExitCode(1) }
    }
}
