import FineGrain

/// Prompt + response pairs right-padded into the `[B, T]` layout `GPT.forward` takes, with next-token
/// targets and a mask of the positions that predict a response token. For row `b` with prompt length `P`
/// and response length `R`, position `t` in `P-1 ..< P-1+R` predicts response token `t-P+1`; every other
/// position (prompt, padding) has mask 0 and must get zero loss coefficients.
public struct PackedSequences: Sendable, Equatable {
    public var batch: Int
    public var length: Int
    /// [B*T] token ids (padding = `pad`).
    public var tokens: [Int32]
    /// [B*T] next-token targets.
    public var targets: [Int32]
    /// [B*T] 1 where the position predicts a response token, else 0.
    public var responseMask: [Float]
    /// Per row, the first position that predicts a response token (`P - 1`) and the response length.
    public var responseStart: [Int]
    public var responseLength: [Int]

    /// Packs `prompts[b] + responses[b]`; `length` defaults to the longest pair. Throws when counts differ,
    /// a prompt is empty, or a pair exceeds `length`.
    public init(prompts: [[Int32]], responses: [[Int32]], pad: Int32 = 0, length: Int? = nil) throws {
        guard prompts.count == responses.count else {
            throw FineGrainError.invalidField(field: "responses", reason: "\(responses.count) responses for \(prompts.count) prompts")
        }
        guard !prompts.isEmpty else { throw FineGrainError.invalidField(field: "prompts", reason: "need at least one prompt") }
        let longest = zip(prompts, responses).map { $0.count + $1.count }.max()!
        let T = length ?? longest
        if longest > T { throw FineGrainError.invalidField(field: "length", reason: "a prompt + response of \(longest) tokens exceeds length \(T)") }
        batch = prompts.count
        self.length = T
        tokens = [Int32](repeating: pad, count: batch * T)
        targets = tokens
        responseMask = [Float](repeating: 0, count: batch * T)
        responseStart = []
        responseLength = []
        for b in 0 ..< batch {
            let p = prompts[b], r = responses[b]
            if p.isEmpty { throw FineGrainError.invalidField(field: "prompts[\(b)]", reason: "prompt is empty") }
            let seq = p + r
            for (t, tok) in seq.enumerated() { tokens[b * T + t] = tok }
            for t in 0 ..< seq.count - 1 { targets[b * T + t] = seq[t + 1] }
            for t in (p.count - 1) ..< (p.count - 1 + r.count) { responseMask[b * T + t] = 1 }
            responseStart.append(p.count - 1)
            responseLength.append(r.count)
        }
    }

    /// Per-response slices of a per-position column `[B*T]` (e.g. log-probs): row `b` gets its
    /// `responseLength[b]` values starting at `responseStart[b]`, i.e. one value per response token.
    public func responseValues(_ perPosition: [Float]) -> [[Float]] {
        (0 ..< batch).map { b in
            let lo = b * length + responseStart[b]
            return Array(perPosition[lo ..< lo + responseLength[b]])
        }
    }

    /// The inverse of `responseValues`: scatters per-response-token values (e.g. d loss / d logprob) back to
    /// positions, zeros elsewhere.
    public func scatter(_ perToken: [[Float]]) throws -> [Float] {
        guard perToken.count == batch else {
            throw FineGrainError.invalidField(field: "perToken", reason: "expected \(batch) rows, got \(perToken.count)")
        }
        var out = [Float](repeating: 0, count: batch * length)
        for b in 0 ..< batch {
            guard perToken[b].count == responseLength[b] else {
                throw FineGrainError.invalidField(field: "perToken[\(b)]", reason: "expected \(responseLength[b]) values, got \(perToken[b].count)")
            }
            for (j, v) in perToken[b].enumerated() { out[b * length + responseStart[b] + j] = v }
        }
        return out
    }
}
