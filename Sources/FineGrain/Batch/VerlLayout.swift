/// Conversion between verl's padded layout and FineGrain's ragged `RolloutBatch` — the one place padding
/// exists. verl's tensors are right-padded `[B][T]`; `response_mask` is 1 for policy tokens and may have
/// interior zeros (tool / observation tokens of a multi-turn response); rows are grouped by `uid`.
public enum VerlLayout {
    /// Builds the ragged batch skeleton (offsets, mask, groups) from a padded `response_mask`.
    ///
    /// - `trimTrailingPadding: true` keeps each row up to its last mask-1 position (what the service does:
    ///   trailing padding carries no information for any estimator). `false` keeps the full width `T` for
    ///   every row, so outputs can be compared with verl's at every position, padding included.
    /// - `groups`: one id per row, or nil for one group per row.
    public static func batch(responseMask: [[Double]], groups: [GroupID]?, trimTrailingPadding: Bool) throws -> RolloutBatch {
        let b = responseMask.count
        guard b > 0 else { throw FineGrainError.invalidField(field: "response_mask", reason: "the batch is empty (0 rows)") }
        let width = responseMask[0].count
        var lengths = [Int](); lengths.reserveCapacity(b)
        var mask = [UInt8](); mask.reserveCapacity(b * width)
        for (i, row) in responseMask.enumerated() {
            guard row.count == width else {
                throw FineGrainError.invalidField(field: "response_mask", reason: "row \(i) has \(row.count) columns, row 0 has \(width)")
            }
            var last = -1
            for (t, v) in row.enumerated() {
                guard v == 0 || v == 1 else {
                    throw FineGrainError.invalidField(field: "response_mask", reason: "row \(i) column \(t) is \(v); must be 0 or 1")
                }
                if v == 1 { last = t }
            }
            let len = trimTrailingPadding ? last + 1 : width
            lengths.append(len)
            for t in 0 ..< len { mask.append(row[t] == 1 ? 1 : 0) }
        }
        if let g = groups, g.count != b {
            throw FineGrainError.invalidField(field: "index", reason: "has \(g.count) group ids for \(b) rows")
        }
        return RolloutBatch(groups: groups ?? (0 ..< b).map { GroupID.int($0) }, lengths: lengths, mask: mask)
    }

    /// The ragged `[N]` column of a padded `[B][T]` tensor (each row cut to the batch's row length).
    public static func ragged(_ x: [[Double]], like batch: RolloutBatch, field: String) throws -> [Double] {
        guard x.count == batch.count else {
            throw FineGrainError.invalidField(field: field, reason: "has \(x.count) rows, the batch has \(batch.count)")
        }
        var out = [Double](); out.reserveCapacity(batch.tokenCount)
        for r in 0 ..< batch.count {
            let len = batch.length(r)
            guard x[r].count >= len else {
                throw FineGrainError.invalidField(field: field, reason: "row \(r) has \(x[r].count) columns, needs \(len)")
            }
            out.append(contentsOf: x[r][0 ..< len])
        }
        return out
    }

    /// Pads a ragged `[N]` column back to `[B][width]`, filling positions past each row's end with `fill`.
    public static func padded(_ x: [Double], like batch: RolloutBatch, width: Int, fill: Double = 0) -> [[Double]] {
        (0 ..< batch.count).map { r in
            var row = Array(x[batch.range(r)])
            if row.count < width { row.append(contentsOf: repeatElement(fill, count: width - row.count)) }
            return row
        }
    }

    /// verl places the sequence score on the last valid token of `token_level_scores`; this reads an
    /// outcome-only `[B][T]` reward tensor back into per-response outcomes (row sums).
    public static func rowSums(_ x: [[Double]]) -> [Double] { x.map { $0.reduce(0, +) } }
}
