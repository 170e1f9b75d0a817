import FineGrain

/// Prompt + response rows packed into the model's padded `[B, T]` layout, with the map from each response
/// token (ragged, FineGrain's `[N]` order) to the position whose logits predict it.
///
/// Response token `j` of row `b` sits at position `p_b + j` (`p_b` = prompt length) and is predicted by the
/// logits at `p_b + j - 1`; the value of the state before it is read at the same position (verl's
/// convention: the critic's output one position left of the token).
struct PackedSequences {
    let batch: Int                 // B
    let length: Int                // T = longest prompt + response
    var tokens: [Int32]            // [B*T], PAD after each row
    var targets: [Int32]           // [B*T], next token (PAD at the end of a row)
    let positions: [Int]           // [N] flat index (b*T + t) predicting response token n

    init(prompts: [[Int32]], responses: [[Int32]]) {
        let b = prompts.count
        let t = zip(prompts, responses).map { $0.count + $1.count }.max() ?? 1
        var tokens = [Int32](repeating: Vocabulary.pad, count: b * t)
        var positions = [Int]()
        positions.reserveCapacity(responses.reduce(0) { $0 + $1.count })
        for r in 0 ..< b {
            let row = prompts[r] + responses[r]
            for (i, x) in row.enumerated() { tokens[r * t + i] = x }
            for j in 0 ..< responses[r].count { positions.append(r * t + prompts[r].count + j - 1) }
        }
        self.batch = b
        self.length = t
        self.tokens = tokens
        self.targets = GPT.nextTokenTargets(tokens: tokens, batch: b, length: t, pad: Vocabulary.pad)
        self.positions = positions
    }

    /// Per-response-token values `[N]` gathered from a per-position column `[B*T]`.
    func gather(_ x: [Float]) -> [Double] { positions.map { Double(x[$0]) } }

    /// Channel `channel` of per-position logits `[B*T, V]` at every response token, `[N]`.
    func gather(logits: [Float], vocab: Int, channel: Int) -> [Double] { positions.map { Double(logits[$0 * vocab + channel]) } }

    /// A per-position column `[B*T]` holding `g[n]` at response token `n`'s position, 0 elsewhere.
    func scatter(_ g: [Double]) -> [Float] {
        var out = [Float](repeating: 0, count: batch * length)
        for (n, p) in positions.enumerated() { out[p] = Float(g[n]) }
        return out
    }
}
