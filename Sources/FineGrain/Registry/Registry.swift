/// The one place every method is looked up by its stable snake_case name. The CLI, the service and the
/// trainer reach methods only through here, so a method registered once is available everywhere.
///
/// The lists themselves live beside the methods (`Credit/CreditRegistry.swift`,
/// `Losses/LossRegistry.swift`); this file only indexes them and checks names are unique.
public enum Registry {
    public static let estimators: [String: AdvantageEstimator] = index(creditEstimators.map { ($0.info.name, $0) }, kind: "estimator")
    public static let losses: [String: Loss] = index(registeredLosses.map { ($0.info.name, $0) }, kind: "loss")
    public static let klEstimators: [String: KLEstimator] = index(registeredKLEstimators.map { ($0.info.name, $0) }, kind: "kl")

    private static func index<T>(_ pairs: [(String, T)], kind: String) -> [String: T] {
        var out = [String: T]()
        for (name, entry) in pairs {
            precondition(out[name] == nil, "duplicate \(kind) name '\(name)' in the registry")
            out[name] = entry
        }
        return out
    }

    /// Every method's metadata, sorted by kind then name.
    public static var allMethods: [MethodInfo] {
        let infos = estimators.values.map(\.info) + losses.values.map(\.info) + klEstimators.values.map(\.info)
        let order = Dictionary(uniqueKeysWithValues: MethodKind.allCases.enumerated().map { ($1, $0) })
        return infos.sorted { (order[$0.kind]!, $0.name) < (order[$1.kind]!, $1.name) }
    }

    public static func estimator(_ name: String) throws -> AdvantageEstimator {
        guard let e = estimators[name] else {
            throw FineGrainError.unknownMethod(kind: "estimator", name: name, known: estimators.keys.sorted())
        }
        return e
    }

    public static func loss(_ name: String) throws -> Loss {
        guard let l = losses[name] else {
            throw FineGrainError.unknownMethod(kind: "loss", name: name, known: losses.keys.sorted())
        }
        return l
    }

    public static func kl(_ name: String) throws -> KLEstimator {
        guard let k = klEstimators[name] else {
            throw FineGrainError.unknownMethod(kind: "kl estimator", name: name, known: klEstimators.keys.sorted())
        }
        return k
    }

    /// Validates the batch and the parameters, then runs the named estimator.
    public static func advantages(_ name: String, batch: RolloutBatch, params: [String: ParamValue] = [:]) throws -> AdvantageOutput {
        let est = try estimator(name)
        try batch.validate()
        let p = try Params.resolve(params, specs: est.info.params, method: name)
        let out = try est.compute(batch, p)
        precondition(out.advantages.count == batch.tokenCount, "\(name) returned \(out.advantages.count) advantages for \(batch.tokenCount) tokens")
        return out
    }

    /// Resolves parameters and runs the named loss.
    public static func loss(_ name: String, input: LossInput, params: [String: ParamValue] = [:]) throws -> LossOutput {
        let l = try loss(name)
        let p = try Params.resolve(params, specs: l.info.params, method: name)
        return try l.compute(input, p)
    }
}
