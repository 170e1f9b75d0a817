/// What kind of method a registry entry is.
public enum MethodKind: String, Sendable, CaseIterable {
    case estimator          // rollouts -> per-token advantages (+ returns)
    case policyLoss = "policy_loss"  // log-probs + advantages -> loss value, metrics, d loss / d logprob
    case valueLoss = "value_loss"    // value predictions + returns -> loss value, metrics, d loss / d vpred
    case kl                 // log-probs + reference log-probs -> per-token KL and d KL / d logprob
}

/// The paper a method comes from.
public struct Citation: Sendable {
    public let title: String
    public let year: Int
    public let arxiv: String?
    public init(_ title: String, _ year: Int, arxiv: String? = nil) { self.title = title; self.year = year; self.arxiv = arxiv }
    public var description: String { "\(title) (\(year)\(arxiv.map { ", arXiv \($0)" } ?? ""))" }
}

/// Registry metadata of one method: stable snake_case name, paper, formula, parameters and the JSONL
/// fields it reads. `finegrain methods` and `GET /v1/methods` print exactly this.
public struct MethodInfo: Sendable {
    public let name: String
    public let kind: MethodKind
    public let summary: String
    public let paper: Citation
    public let formula: String
    public let params: [ParamSpec]
    /// JSONL fields the method reads (beyond `group`, `tokens`, `mask`), e.g. `["reward"]`, `["values"]`.
    public let requires: [String]

    public init(name: String, kind: MethodKind, summary: String, paper: Citation, formula: String,
                params: [ParamSpec] = [], requires: [String] = []) {
        self.name = name; self.kind = kind; self.summary = summary; self.paper = paper
        self.formula = formula; self.params = params; self.requires = requires
    }
}

/// Output of an advantage estimator, in the batch's ragged layout.
public struct AdvantageOutput: Sendable {
    /// Per-token advantages `[N]`.
    public var advantages: [Double]
    /// Per-token returns `[N]` where the method defines them (critic targets), else nil.
    public var returns: [Double]?
    /// Small diagnostics record (group std, zero-std fraction, ...). O(1) entries, not per token.
    public var diagnostics: [String: Double]
    /// `[rows]`, set by outcome estimators whose advantages (and returns, when equal) are one value per
    /// row broadcast over the mask: `advantages[i] == rowValues[row(i)]` where `mask[i] == 1`, `+0` elsewhere.
    /// The service sends these instead of `[N]` values (`row_values`); `OutcomeRowValuesTests` checks the
    /// identity for every estimator that sets it.
    public var rowValues: [Double]?
    public init(advantages: [Double], returns: [Double]?, diagnostics: [String: Double] = [:], rowValues: [Double]? = nil) {
        self.advantages = advantages; self.returns = returns; self.diagnostics = diagnostics; self.rowValues = rowValues
    }
}

/// A registered advantage estimator: metadata plus the one uniform signature.
public struct AdvantageEstimator: Sendable {
    public let info: MethodInfo
    public let compute: @Sendable (RolloutBatch, Params) throws -> AdvantageOutput
    public init(info: MethodInfo, compute: @escaping @Sendable (RolloutBatch, Params) throws -> AdvantageOutput) {
        self.info = info; self.compute = compute
    }
}

/// Per-token inputs of a loss, ragged like `RolloutBatch` (`offsets` `[R+1]`, every column `[N]`).
/// A loss reads the columns it needs and throws `missingField` naming any that is nil.
public struct LossInput: Sendable {
    public var offsets: [Int]
    public var mask: [UInt8]
    /// Current policy log-probs (the differentiated input of policy losses).
    public var logprob: [Double]?
    /// Behaviour (rollout / old) policy log-probs.
    public var oldLogprob: [Double]?
    public var refLogprob: [Double]?
    public var advantages: [Double]?
    /// Per-token rollout-correction weights (constants), multiplied into the loss before aggregation.
    public var rolloutISWeights: [Double]?
    public var entropy: [Double]?
    /// Value-loss inputs: new predictions (differentiated), old values, returns.
    public var vpreds: [Double]?
    public var values: [Double]?
    public var returns: [Double]?

    public var count: Int { offsets.count - 1 }
    public var tokenCount: Int { offsets.last ?? 0 }

    public init(offsets: [Int], mask: [UInt8]) {
        self.offsets = offsets; self.mask = mask
    }

    /// Loss inputs from a batch and the advantages an estimator produced for it.
    public init(batch: RolloutBatch, advantages: [Double]?) {
        self.init(offsets: batch.offsets, mask: batch.mask)
        logprob = batch.logprob; oldLogprob = batch.oldLogprob; refLogprob = batch.refLogprob
        entropy = batch.entropy; values = batch.value
        self.advantages = advantages
        rolloutISWeights = batch.extraTokenColumns["rollout_is_weights"]
    }

    public func require(_ c: [Double]?, _ field: String, method: String) throws -> [Double] {
        guard let c else { throw FineGrainError.missingField(field: field, method: method) }
        guard c.count == tokenCount else {
            throw FineGrainError.invalidField(field: field, reason: "has \(c.count) entries but the batch has \(tokenCount) tokens")
        }
        return c
    }
}

/// Output of a loss: scalar value, the metrics verl reports, and d value / d (differentiated input) `[N]`.
public struct LossOutput: Sendable {
    public var value: Double
    public var metrics: [String: Double]
    public var gradient: [Double]
    public init(value: Double, metrics: [String: Double], gradient: [Double]) {
        self.value = value; self.metrics = metrics; self.gradient = gradient
    }
}

/// A registered loss (policy or value): metadata plus the uniform signature.
public struct Loss: Sendable {
    public let info: MethodInfo
    public let compute: @Sendable (LossInput, Params) throws -> LossOutput
    public init(info: MethodInfo, compute: @escaping @Sendable (LossInput, Params) throws -> LossOutput) {
        self.info = info; self.compute = compute
    }
}

/// Output of a per-token KL estimator.
public struct KLOutput: Sendable {
    /// Per-token KL estimate `[N]`.
    public var values: [Double]
    /// d values[t] / d logprob[t] `[N]` (the estimator is elementwise).
    public var gradient: [Double]
    public init(values: [Double], gradient: [Double]) { self.values = values; self.gradient = gradient }
}

/// A registered KL estimator.
public struct KLEstimator: Sendable {
    public let info: MethodInfo
    public let compute: @Sendable (_ logprob: [Double], _ refLogprob: [Double]) -> KLOutput
    public init(info: MethodInfo, compute: @escaping @Sendable ([Double], [Double]) -> KLOutput) {
        self.info = info; self.compute = compute
    }
}
