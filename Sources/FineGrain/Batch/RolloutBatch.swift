import Dispatch

/// A pointer handed to parallel workers that touch disjoint ranges.
struct UnsafeSendable<P>: @unchecked Sendable { let value: P? ; init(_ v: P?) { value = v } }

/// A prompt-group identifier as users send it: verl's `uid` strings, or plain integers.
public enum GroupID: Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case string(String)
    public var description: String {
        switch self { case let .int(i): return String(i); case let .string(s): return s }
    }
}

/// A batch of rollouts in FineGrain's ragged, columnar layout: no padding inside the library.
///
/// R responses, N tokens. Response `r` owns tokens `offsets[r] ..< offsets[r+1]`. Per-response columns are
/// `[R]`, per-token columns `[N]`, per-step columns `[S]` with `stepOffsets` (`[R+1]`) saying which steps
/// belong to which response. Optional columns are `nil` when absent; a method that needs one throws
/// `FineGrainError.missingField` naming it.
///
/// Statistics are computed in Double; columns are stored as Double too (decision: the conformance files are
/// float64 and a Float store would cost their tolerance; bandwidth is the price, measured in `finegrain bench`).
public struct RolloutBatch: Sendable {
    // ---- per response [R]
    /// Token offsets, `[R+1]`, `offsets[0] == 0`, non-decreasing, `offsets[R] == N`.
    public var offsets: [Int]
    /// Dense group index of each response, `[R]`, in `0 ..< groupIDs.count`.
    public var group: [Int]
    /// The user's group identifiers, `[G]`; `group[r]` indexes into it.
    public var groupIDs: [GroupID]
    /// Sequence-level outcome reward, `[R]`.
    public var outcome: [Double]?
    /// Sequence-level baseline reward (ReMax's greedy-response reward), `[R]`.
    public var rewardBaseline: [Double]?
    /// Named sequence-level rewards for multi-reward methods, each `[R]`.
    public var namedRewards: [String: [Double]]

    // ---- per token [N]
    public var tokens: [Int32]
    /// 1 = policy token that enters the loss; 0 = tool / observation token inside a response.
    public var mask: [UInt8]
    public var logprob: [Double]?
    public var oldLogprob: [Double]?
    public var refLogprob: [Double]?
    public var entropy: [Double]?
    public var value: [Double]?
    public var tokenReward: [Double]?
    /// Further per-token float columns that single methods need (e.g. `sum_pi_squared`,
    /// `rollout_is_weights`), keyed by their JSONL field name.
    public var extraTokenColumns: [String: [Double]]

    // ---- per step [S]
    /// Step offsets per response, `[R+1]`, into `stepEnds` / `stepReward`.
    public var stepOffsets: [Int]?
    /// Exclusive end of each step, relative to the response start, strictly increasing within a response.
    public var stepEnds: [Int]?
    public var stepReward: [Double]?
    /// Further per-step float columns (`[S]` each), keyed by their JSONL field name (`step_*`).
    public var extraStepColumns: [String: [Double]]

    /// Number of responses R.
    public var count: Int { offsets.count - 1 }
    /// Number of tokens N.
    public var tokenCount: Int { offsets.last ?? 0 }
    /// Number of groups G.
    public var groupCount: Int { groupIDs.count }

    public func length(_ r: Int) -> Int { offsets[r + 1] - offsets[r] }
    public func range(_ r: Int) -> Range<Int> { offsets[r] ..< offsets[r + 1] }

    /// Builds a batch from response lengths; group ids are densified in order of first appearance.
    public init(groups: [GroupID], lengths: [Int], tokens: [Int32]? = nil, mask: [UInt8]? = nil) {
        var offsets = [0]; offsets.reserveCapacity(lengths.count + 1)
        for l in lengths { offsets.append(offsets[offsets.count - 1] + Swift.max(0, l)) }
        let n = offsets[offsets.count - 1]
        var dense = [GroupID: Int](); var ids = [GroupID](); var g = [Int](); g.reserveCapacity(groups.count)
        for id in groups {
            if let k = dense[id] { g.append(k) } else { dense[id] = ids.count; g.append(ids.count); ids.append(id) }
        }
        self.offsets = offsets
        self.group = g
        self.groupIDs = ids
        self.outcome = nil
        self.rewardBaseline = nil
        self.namedRewards = [:]
        self.tokens = tokens ?? [Int32](repeating: 0, count: n)
        self.mask = mask ?? [UInt8](repeating: 1, count: n)
        self.logprob = nil; self.oldLogprob = nil; self.refLogprob = nil
        self.entropy = nil; self.value = nil; self.tokenReward = nil
        self.extraTokenColumns = [:]
        self.stepOffsets = nil; self.stepEnds = nil; self.stepReward = nil
        self.extraStepColumns = [:]
    }
}

// MARK: - Derived views

extension RolloutBatch {
    /// Group membership in CSR form: members of group `g` are `members[start[g] ..< start[g+1]]`, in
    /// response order. O(R) time and memory.
    public struct GroupIndex: Sendable {
        public let start: [Int]    // [G+1]
        public let members: [Int]  // [R]
        public func size(_ g: Int) -> Int { start[g + 1] - start[g] }
    }

    public func groupIndex() -> GroupIndex {
        var start = [Int](repeating: 0, count: groupCount + 1)
        for g in group { start[g + 1] += 1 }
        for g in 0 ..< groupCount { start[g + 1] += start[g] }
        var fill = start
        var members = [Int](repeating: 0, count: count)
        for r in 0 ..< count { members[fill[group[r]]] = r; fill[group[r]] += 1 }
        return GroupIndex(start: start, members: members)
    }

    /// The sequence score of each response `[R]`, verl's `R_i = sum_t token_level_rewards[i][t]`:
    /// the outcome (if any) plus the sum of the per-token rewards (if any). Throws if neither is present.
    public func scores(method: String) throws -> [Double] {
        guard outcome != nil || tokenReward != nil else {
            throw FineGrainError.missingField(field: "reward", method: method)
        }
        var s = outcome ?? [Double](repeating: 0, count: count)
        if let tr = tokenReward {
            let rows = count
            tr.withUnsafeBufferPointer { t in offsets.withUnsafeBufferPointer { o in s.withUnsafeMutableBufferPointer { sb in
                let tp = UnsafeSendable(t.baseAddress), op = UnsafeSendable(o.baseAddress), sp = UnsafeSendable(sb.baseAddress)
                // Row sums, split over cores for large batches (each row summed in token order: deterministic).
                let chunks = tokenCount > 65_536 ? Swift.min(rows, 8) : 1
                let body: @Sendable (Int) -> Void = { c in
                    guard let t = tp.value, let o = op.value, let s = sp.value else { return }
                    for r in (rows &* c) / chunks ..< (rows &* (c &+ 1)) / chunks {
                        var acc = 0.0
                        var i = o[r]
                        let hi = o[r &+ 1]
                        while i < hi { acc += t[i]; i &+= 1 }
                        s[r] += acc
                    }
                }
                if chunks == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: body) }
            } } }
        }
        return s
    }

    /// Index of the token that receives the outcome reward in verl's layout: the last mask-1 token of the
    /// response, or its last token if none is masked in, or nil for an empty response.
    public func outcomeTokenIndex(_ r: Int) -> Int? {
        let lo = offsets[r], hi = offsets[r + 1]
        guard hi > lo else { return nil }
        var i = hi - 1
        while i >= lo { if mask[i] != 0 { return i }; i -= 1 }
        return hi - 1
    }

    /// Per-token rewards `[N]` as verl's `token_level_rewards`: `token_rewards` (zeros if absent) plus the
    /// outcome placed on `outcomeTokenIndex`. Throws if neither reward source is present.
    public func tokenLevelRewards(method: String) throws -> [Double] {
        guard outcome != nil || tokenReward != nil else {
            throw FineGrainError.missingField(field: "reward", method: method)
        }
        var out = tokenReward ?? [Double](repeating: 0, count: tokenCount)
        if let o = outcome {
            for r in 0 ..< count { if let i = outcomeTokenIndex(r) { out[i] += o[r] } }
        }
        return out
    }

    /// The named column, or a `missingField` error naming the JSONL field.
    public func require(_ column: [Double]?, _ field: String, method: String) throws -> [Double] {
        guard let c = column else { throw FineGrainError.missingField(field: field, method: method) }
        return c
    }

    /// A per-token extra column by JSONL name, or a `missingField` error.
    public func extra(_ field: String, method: String) throws -> [Double] {
        guard let c = extraTokenColumns[field] else { throw FineGrainError.missingField(field: field, method: method) }
        return c
    }

    /// Count of mask-1 tokens in response `r`.
    public func validCount(_ r: Int) -> Int {
        var n = 0
        for i in offsets[r] ..< offsets[r + 1] where mask[i] != 0 { n += 1 }
        return n
    }
}
