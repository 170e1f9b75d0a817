import FineGrain
import Foundation

/// Continuations sampled by `GPT.sample`.
public struct SampleOutput: Sendable, Equatable {
    /// Generated tokens per prompt (the stop token, when hit, is included as the last token).
    public var tokens: [[Int32]]
    /// Sampling-time log-probabilities of those tokens (the behaviour policy's "old" log-probs):
    /// `log softmax(z / temperature)[token]`, temperature 1 when greedy. This is exactly what
    /// `GPT.logprobs(tokens:targets:batch:length:temperature:)` recomputes on the same sequence; the top-p
    /// truncation is not folded in (as with vLLM's default logprobs used by verl).
    public var logprobs: [[Float]]
    /// Whether each row ended on `stopToken` (false: it hit `maxNewTokens`).
    public var stopped: [Bool]
}

extension GPT {
    /// Samples continuations of `prompts` (each non-empty) incrementally with a per-layer KV cache: each new
    /// token costs one position of compute, not a re-run of the prefix. All rows advance in lockstep; a row
    /// still inside its (longer) prompt is fed its next prompt token instead of a sample.
    ///
    /// - temperature: `p ~ softmax(z / temperature)`; `0` means greedy (argmax).
    /// - topP: nucleus sampling (Holtzman et al., "The Curious Case of Neural Text Degeneration", ICLR 2020):
    ///   keep the smallest set of most-probable tokens whose probability sums to `>= topP`, renormalise and
    ///   sample from it; `1` keeps the full distribution.
    /// - stopToken: generation for a row ends after it samples this token.
    /// Throws when a prompt is empty or holds an id outside the vocabulary, or when
    /// `longest prompt + maxNewTokens > contextLength`.
    public func sample(prompts: [[Int32]], maxNewTokens: Int, temperature: Float = 1, topP: Float = 1,
                       stopToken: Int32? = nil, rng: inout SplitMix64) throws -> SampleOutput {
        let V = config.vocabSize
        if prompts.isEmpty { throw FineGrainError.invalidField(field: "prompts", reason: "need at least one prompt") }
        for (i, p) in prompts.enumerated() {
            if p.isEmpty { throw FineGrainError.invalidField(field: "prompts[\(i)]", reason: "prompt is empty") }
            if let t = p.first(where: { $0 < 0 || $0 >= Int32(V) }) {
                throw FineGrainError.invalidField(field: "prompts[\(i)]", reason: "token id \(t) is outside the vocabulary 0..<\(V)")
            }
        }
        if maxNewTokens < 1 { throw FineGrainError.invalidParameter(name: "maxNewTokens", method: "GPT.sample", reason: "must be >= 1, got \(maxNewTokens)") }
        let longest = prompts.map(\.count).max()!
        if longest + maxNewTokens > config.contextLength {
            throw FineGrainError.invalidParameter(name: "maxNewTokens", method: "GPT.sample",
                reason: "longest prompt \(longest) + maxNewTokens \(maxNewTokens) exceeds contextLength \(config.contextLength)")
        }
        if !(temperature >= 0) || !temperature.isFinite {
            throw FineGrainError.invalidParameter(name: "temperature", method: "GPT.sample", reason: "must be finite and >= 0, got \(temperature)")
        }
        if !(topP > 0 && topP <= 1) {
            throw FineGrainError.invalidParameter(name: "topP", method: "GPT.sample", reason: "must be in (0, 1], got \(topP)")
        }
        if let s = stopToken, s < 0 || s >= Int32(V) {
            throw FineGrainError.invalidParameter(name: "stopToken", method: "GPT.sample", reason: "id \(s) is outside the vocabulary 0..<\(V)")
        }
        let B = prompts.count
        let cache = KVCache(config: config, B: B, maxT: longest + maxNewTokens)
        var out = SampleOutput(tokens: Array(repeating: [], count: B), logprobs: Array(repeating: [], count: B),
                               stopped: Array(repeating: false, count: B))
        for b in 0 ..< B { out.tokens[b].reserveCapacity(maxNewTokens); out.logprobs[b].reserveCapacity(maxNewTokens) }
        var done = [Bool](repeating: false, count: B)
        var remaining = B
        var probs = [Double](repeating: 0, count: V)
        var order = [Int](repeating: 0, count: V)
        var pos = 0
        while remaining > 0 {
            for b in 0 ..< B {
                let p = prompts[b]
                cache.tokens[b] = pos < p.count ? p[pos] : (done[b] ? 0 : out.tokens[b][pos - p.count])
            }
            decodeStep(cache, pos: pos)
            for b in 0 ..< B where !done[b] && pos + 1 >= prompts[b].count {
                let (tok, lp) = Self.pick(logits: cache.logits.p + b * V, V: V, temperature: temperature, topP: topP,
                                          probs: &probs, order: &order, rng: &rng)
                out.tokens[b].append(tok)
                out.logprobs[b].append(lp)
                if tok == stopToken { out.stopped[b] = true }
                if tok == stopToken || out.tokens[b].count == maxNewTokens { done[b] = true; remaining -= 1 }
            }
            pos += 1
        }
        return out
    }

    /// Chooses one token from `logits [V]`; returns it with `log softmax(z / tau)[token]` (tau = 1 if greedy).
    static func pick(logits z: UnsafePointer<Float>, V: Int, temperature: Float, topP: Float,
                     probs: inout [Double], order: inout [Int], rng: inout SplitMix64) -> (Int32, Float) {
        let invTau = temperature > 0 ? 1 / Double(temperature) : 1
        var m = -Double.infinity
        var argmax = 0
        for j in 0 ..< V where Double(z[j]) > m { m = Double(z[j]); argmax = j }
        m *= invTau
        var s = 0.0
        for j in 0 ..< V { let e = Foundation.exp(Double(z[j]) * invTau - m); probs[j] = e; s += e }
        let lse = m + Foundation.log(s)
        var chosen = argmax
        if temperature > 0 {
            for j in 0 ..< V { probs[j] /= s }
            if topP >= 1 {
                let u = rng.uniform()
                var c = 0.0
                chosen = V - 1
                for j in 0 ..< V { c += probs[j]; if u < c { chosen = j; break } }
            } else {
                for j in 0 ..< V { order[j] = j }
                probs.withUnsafeBufferPointer { pb in order.sort { pb[$0] > pb[$1] || (pb[$0] == pb[$1] && $0 < $1) } }
                var kept = 0, mass = 0.0
                while kept < V { mass += probs[order[kept]]; kept += 1; if mass >= Double(topP) { break } }
                let u = rng.uniform() * mass
                var c = 0.0
                chosen = order[kept - 1]
                for r in 0 ..< kept { c += probs[order[r]]; if u < c { chosen = order[r]; break } }
            }
        }
        return (Int32(chosen), Float(Double(z[chosen]) * invTau - lse))
    }
}
