import ArgumentParser
import FineGrain
import Foundation

/// The README's first command (until the embedded trainer lands): compute advantages for the example
/// rollouts with several estimators and print them side by side.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute advantages for an example rollout file with several estimators and print a table."
    )

    @Option(help: "Rollout JSONL file.") var input = "examples/rollouts.jsonl"
    @Option(help: "Comma-separated estimators.") var estimators = "grpo,dr_grpo,rloo,reinforce_plus_plus_baseline,gae"

    func run() throws {
        do {
            let doc = try RolloutJSONL.read(try readInput(input))
            let b = doc.batch
            let names = estimators.split(separator: ",").map(String.init)
            let outs = try names.map { try Registry.advantages($0, batch: b, params: [:]) }
            print("FineGrain demo: \(b.count) responses in \(b.groupCount) groups, \(b.tokenCount) tokens (\(input))")
            print("Advantage of each response's first policy token (sequence-level methods give every token the same value;")
            print("gae varies along the response; '*' marks a response with tool tokens masked out).\n")
            let widths = names.map { max($0.count + 2, 10) }
            var header = "group  len  reward"
            for (n, w) in zip(names, widths) { header += pad(n, w) }
            print(header)
            print(String(repeating: "-", count: header.count))
            for r in 0 ..< b.count {
                let first = b.range(r).first { b.mask[$0] != 0 } ?? b.offsets[r]
                let holes = b.range(r).contains { b.mask[$0] == 0 } ? "*" : " "
                var line = pad(b.groupIDs[b.group[r]].description, -5) + pad("\(b.length(r))\(holes)", 5)
                    + pad(String(format: "%.1f", b.outcome?[r] ?? 0), 8)
                for (o, w) in zip(outs, widths) { line += pad(String(format: "%+.4f", o.advantages[first]), w) }
                print(line)
            }
            print("\nRun `finegrain advantages --estimator NAME --input \(input)` for per-token output, `finegrain methods` for all methods.")
        } catch let e as FineGrainError {
            throw CLIError(e)
        }
    }

    /// Right-aligns to `w` (left-aligns for negative `w`).
    func pad(_ s: String, _ w: Int) -> String {
        let n = abs(w) - s.count
        guard n > 0 else { return " " + s }
        return w < 0 ? s + String(repeating: " ", count: n) : String(repeating: " ", count: n) + s
    }
}
