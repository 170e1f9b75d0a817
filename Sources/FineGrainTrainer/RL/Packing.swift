import FineGrain

/// The RL loop's view of `PackedSequences`: FineGrain's ragged `[N]` token order (response by response)
/// mapped to the positions whose logits predict each response token. Response token `j` of row `b` is
/// predicted at `responseStart[b] + j` (prompt length - 1 + j); the critic's value of the state before it
/// is read at the same position (verl's convention: the value head output one position left of the token).
extension PackedSequences {
    /// `[N]` flat index (`b*T + t`) predicting response token `n`.
    var positions: [Int] {
        var out = [Int]()
        out.reserveCapacity(responseLength.reduce(0, +))
        for b in 0 ..< batch {
            let lo = b * length + responseStart[b]
            for j in 0 ..< responseLength[b] { out.append(lo + j) }
        }
        return out
    }

    /// Per-response-token values `[N]` gathered from a per-position column `[B*T]`.
    func gather(_ x: [Float], at positions: [Int]) -> [Double] { positions.map { Double(x[$0]) } }

    /// Channel `channel` of per-position logits `[B*T, V]` at every response token, `[N]`.
    func gather(logits: [Float], vocab: Int, channel: Int, at positions: [Int]) -> [Double] {
        positions.map { Double(logits[$0 * vocab + channel]) }
    }

    /// A per-position column `[B*T]` holding `g[n]` at response token `n`'s position, 0 elsewhere.
    func scatter(_ g: [Double], at positions: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: batch * length)
        for (n, p) in positions.enumerated() { out[p] = Float(g[n]) }
        return out
    }
}
