import FineGrain

/// Metrics of one optimiser step of one run.
public struct StepMetrics: Sendable, Equatable {
    public var step: Int
    /// Response tokens sampled so far (cumulative).
    public var tokensSeen: Int
    /// Held-out accuracy in [0, 1]; nil on steps where the run did not evaluate (every k steps).
    public var accuracy: Double?
    /// Mean outcome reward of the step's rollouts.
    public var rewardMean: Double
    /// KL to the reference policy (the trainer's estimator).
    public var kl: Double
    /// Mean token entropy of the step's rollouts.
    public var entropy: Double

    public init(step: Int, tokensSeen: Int, accuracy: Double?, rewardMean: Double, kl: Double, entropy: Double) {
        self.step = step; self.tokensSeen = tokensSeen; self.accuracy = accuracy
        self.rewardMean = rewardMean; self.kl = kl; self.entropy = entropy
    }
}

/// One training run: a method, a seed, its metrics in step order, and its wall-clock time.
public struct RunRecord: Sendable, Equatable {
    public var method: String
    public var seed: UInt64
    public var metrics: [StepMetrics]
    public var wallSeconds: Double

    public init(method: String, seed: UInt64, metrics: [StepMetrics], wallSeconds: Double) {
        self.method = method; self.seed = seed; self.metrics = metrics; self.wallSeconds = wallSeconds
    }

    /// The first evaluated accuracy (the warm-start policy's when the run evaluates at step 0).
    public var initialAccuracy: Double? { metrics.lazy.compactMap(\.accuracy).first }
    /// The last evaluated accuracy.
    public var finalAccuracy: Double? { metrics.last { $0.accuracy != nil }?.accuracy }
}

/// The accuracy a method must reach for the steps-to-target and tokens-to-target columns.
public enum AccuracyTarget: Sendable, Equatable {
    /// A fixed accuracy.
    case absolute(Double)
    /// The mean initial accuracy over all runs plus this margin.
    case aboveInitial(Double)
}

/// What the report says about the runs.
public struct ReportOptions: Sendable, Equatable {
    public var title: String
    /// A line under the title (task, model size, ...); escaped like all text.
    public var subtitle: String
    public var target: AccuracyTarget
    /// The method the others are compared against in the narrative.
    public var baseline: String

    public init(title: String = "FineGrain trainer: credit assignment compared", subtitle: String = "",
                target: AccuracyTarget = .aboveInitial(0.2), baseline: String = "grpo") {
        self.title = title; self.subtitle = subtitle; self.target = target; self.baseline = baseline
    }
}

extension Report {
    /// Throws naming the first bad field: no runs, an empty method name, no evaluated accuracy, steps not
    /// strictly increasing, tokens decreasing, non-finite numbers, accuracy outside [0, 1].
    static func validate(_ runs: [RunRecord], _ options: ReportOptions) throws {
        guard !runs.isEmpty else { throw FineGrainError.invalidField(field: "runs", reason: "no runs to report") }
        switch options.target {
        case let .absolute(v), let .aboveInitial(v):
            guard v.isFinite else { throw FineGrainError.invalidParameter(name: "target", method: "report", reason: "must be finite, got \(v)") }
        }
        for (i, run) in runs.enumerated() {
            let f = "runs[\(i)]"
            guard !run.method.isEmpty else { throw FineGrainError.invalidField(field: "\(f).method", reason: "is empty") }
            guard run.wallSeconds.isFinite, run.wallSeconds >= 0 else {
                throw FineGrainError.invalidField(field: "\(f).wallSeconds", reason: "must be finite and >= 0, got \(run.wallSeconds)")
            }
            guard run.initialAccuracy != nil else {
                throw FineGrainError.invalidField(field: "\(f).metrics", reason: "no step has an evaluated accuracy")
            }
            for (j, m) in run.metrics.enumerated() {
                let g = "\(f).metrics[\(j)]"
                if j > 0 {
                    let prev = run.metrics[j - 1]
                    guard m.step > prev.step else { throw FineGrainError.invalidField(field: "\(g).step", reason: "steps must strictly increase (\(prev.step) then \(m.step))") }
                    guard m.tokensSeen >= prev.tokensSeen else {
                        throw FineGrainError.invalidField(field: "\(g).tokensSeen", reason: "must not decrease (\(prev.tokensSeen) then \(m.tokensSeen))")
                    }
                }
                guard m.tokensSeen >= 0 else { throw FineGrainError.invalidField(field: "\(g).tokensSeen", reason: "is negative") }
                if let a = m.accuracy, !(a.isFinite && a >= 0 && a <= 1) {
                    throw FineGrainError.invalidField(field: "\(g).accuracy", reason: "must be in [0, 1], got \(a)")
                }
                for (name, v) in [("rewardMean", m.rewardMean), ("kl", m.kl), ("entropy", m.entropy)] where !v.isFinite {
                    throw FineGrainError.invalidField(field: "\(g).\(name)", reason: "is not finite")
                }
            }
        }
    }
}
