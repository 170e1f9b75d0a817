import ArgumentParser
import FineGrain
import Foundation

struct Methods: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every registered method with its parameters, defaults and paper."
    )

    @Option(name: .long, help: "Only this kind: estimator, policy_loss, value_loss, kl.")
    var kind: String?

    @Flag(name: .long, help: "Print JSON (the same document GET /v1/methods serves).")
    var json = false

    @Flag(name: .long, help: "Print a Markdown table (name, kind, paper, parameters).")
    var markdown = false

    func run() throws {
        var infos = Registry.allMethods
        if let kind {
            guard let k = MethodKind(rawValue: kind) else {
                throw ValidationError("unknown kind '\(kind)'; known: \(MethodKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            infos = infos.filter { $0.kind == k }
        }
        if json {
            let doc = JSONValue.object(["methods": .array(infos.map(MethodCatalog.json))])
            FileHandle.standardOutput.write(try doc.serialized() + Data("\n".utf8))
            return
        }
        if markdown {
            print("| method | kind | paper | parameters (defaults) |")
            print("|---|---|---|---|")
            for i in infos {
                let ps = i.params.map { "`\($0.name)`=\($0.defaultValue)" }.joined(separator: ", ")
                print("| `\(i.name)` | \(i.kind.rawValue) | \(i.paper.description) | \(ps.isEmpty ? "none" : ps) |")
            }
            return
        }
        for info in infos {
            print("\(info.name)  [\(info.kind.rawValue)]  \(info.summary)")
            print("    paper:   \(info.paper.description)")
            print("    formula: \(info.formula)")
            if !info.requires.isEmpty { print("    reads:   \(info.requires.joined(separator: ", "))") }
            for p in info.params {
                let choices = p.choices.isEmpty ? "" : " {\(p.choices.joined(separator: "|"))}"
                print("    --param \(p.name)=<\(p.kind.rawValue)\(choices)>  default \(p.defaultValue)  \(p.doc)")
            }
            print("")
        }
    }
}
