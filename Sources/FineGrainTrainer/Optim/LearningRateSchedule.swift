import FineGrain
import Foundation

/// Learning rate as a function of the 0-based update index `step`.
///
/// - `constant(peak, warmup)`: `peak * min(1, (step + 1) / warmup)`.
/// - `cosine(peak, warmup, total, minimum)`: linear warm-up as above, then cosine decay
///   (Loshchilov & Hutter, "SGDR", 2017) `min + 0.5 (peak - min) (1 + cos(pi * p))` with
///   `p = (step - warmup) / (total - warmup)` clamped to [0, 1].
public enum LearningRateSchedule: Sendable, Equatable, Codable {
    case constant(peak: Float, warmup: Int)
    case cosine(peak: Float, warmup: Int, total: Int, minimum: Float)

    public func rate(at step: Int) -> Float {
        switch self {
        case let .constant(peak, warmup):
            return warmup > 0 && step < warmup ? peak * Float(step + 1) / Float(warmup) : peak
        case let .cosine(peak, warmup, total, minimum):
            if warmup > 0 && step < warmup { return peak * Float(step + 1) / Float(warmup) }
            let span = Swift.max(1, total - warmup)
            let p = Swift.min(1, Swift.max(0, Double(step - warmup) / Double(span)))
            return minimum + Float(0.5 * (1 + cos(Double.pi * p))) * (peak - minimum)
        }
    }

    /// Throws `FineGrainError.invalidParameter` naming the bad field.
    public func validate() throws {
        func bad(_ n: String, _ r: String) -> FineGrainError { .invalidParameter(name: n, method: "LearningRateSchedule", reason: r) }
        switch self {
        case let .constant(peak, warmup):
            if !(peak >= 0) || !peak.isFinite { throw bad("peak", "must be finite and >= 0, got \(peak)") }
            if warmup < 0 { throw bad("warmup", "must be >= 0, got \(warmup)") }
        case let .cosine(peak, warmup, total, minimum):
            if !(peak >= 0) || !peak.isFinite { throw bad("peak", "must be finite and >= 0, got \(peak)") }
            if warmup < 0 { throw bad("warmup", "must be >= 0, got \(warmup)") }
            if total < warmup { throw bad("total", "must be >= warmup (\(warmup)), got \(total)") }
            if !(minimum >= 0 && minimum <= peak) { throw bad("minimum", "must be in [0, peak], got \(minimum)") }
        }
    }
}
