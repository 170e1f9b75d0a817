import Dispatch
import Foundation

// A prefix tree over the steps (segments) of the responses of each group, shared by SPO-tree, SALT and
// PORTool. Encoding: a response is one root-to-leaf path; its `step_ends` cut it into segments
// `[0, e_1), [e_1, e_2), ...`. Two responses of one group share the node of segment j iff their first j
// step ends agree and their tokens agree up to `e_j`. Built per group by sorting the members (lexicographic
// over segments, memcmp on the token bytes) and reading the longest common prefix of neighbours, so the
// whole build is O(tokens · log n) with no dictionary: nodes live in flat arena arrays, created in DFS
// pre-order (a parent always precedes its children), which lets every method do its bottom-up passes as a
// plain reverse loop over a group's node range.

/// Flat node storage for the step tries of every group of a batch. Node 0 of each group's range is the
/// root (the prompt). Arrays are sized to the worst case (`1 + segments` per group) and indexed globally.
final class StepTrie: @unchecked Sendable {
    enum Leaves {
        /// SPO-tree: the tokens after the last step end (possibly none) are the response's own leaf node,
        /// never merged (a leaf is one sample, even if two samples have the same text).
        case ownLeaf
        /// SALT / PORTool: only the step ends cut segments (the caller checks they cover the response);
        /// every segment, the last included, is merged by prefix.
        case mergeAll
    }

    let nodeStart: [Int]                       // [G+1] node range of each group
    let segOffsets: [Int]                      // [R+1] segments of response r: segOffsets[r] ..< segOffsets[r+1]
    let parent: UnsafeMutableBufferPointer<Int32>    // [M] -1 for a root
    let depth: UnsafeMutableBufferPointer<Int32>     // [M] root 0
    let owner: UnsafeMutableBufferPointer<Int32>     // [M] smallest response index passing through the node
    let segStart: UnsafeMutableBufferPointer<Int32>  // [M] segment [start, end) relative to the response start
    let segEnd: UnsafeMutableBufferPointer<Int32>    // [M]
    let isLeaf: UnsafeMutableBufferPointer<UInt8>    // [M] 1 = ownLeaf leaf node
    let segNode: UnsafeMutableBufferPointer<Int32>   // [R+S] node of each segment of each response
    /// Nodes actually used per group (`nodeStart[g] ..< nodeStart[g] + used[g]`).
    let used: UnsafeMutableBufferPointer<Int32>      // [G]

    var nodeCapacity: Int { nodeStart.last ?? 0 }

    deinit {
        parent.deallocate(); depth.deallocate(); owner.deallocate(); segStart.deallocate()
        segEnd.deallocate(); isLeaf.deallocate(); segNode.deallocate(); used.deallocate()
    }

    /// Allocates the arena and builds every group's trie (groups in parallel on large batches).
    init(_ batch: RolloutBatch, leaves: Leaves, method: String) throws {
        let rc = batch.count
        let so = batch.stepOffsets ?? [Int](repeating: 0, count: rc + 1)
        let ends = batch.stepEnds ?? []
        var segOff = [Int](repeating: 0, count: rc + 1)
        for r in 0 ..< rc {
            let steps = so[r + 1] - so[r]
            if leaves == .mergeAll {
                let last = steps > 0 ? ends[so[r + 1] - 1] : 0
                if last != batch.length(r) {
                    throw FineGrainError.invalidField(field: "step_ends",
                        reason: "response \(r): the last step end is \(last) but the response has \(batch.length(r)) tokens (steps must cover every token)")
                }
            }
            segOff[r + 1] = segOff[r] + steps + (leaves == .ownLeaf ? 1 : 0)
        }
        let gi = batch.groupIndex()
        var ns = [Int](repeating: 0, count: batch.groupCount + 1)
        for g in 0 ..< batch.groupCount {
            var cap = 1
            for j in gi.start[g] ..< gi.start[g + 1] { let r = gi.members[j]; cap += segOff[r + 1] - segOff[r] }
            ns[g + 1] = ns[g] + cap
        }
        nodeStart = ns; segOffsets = segOff
        let m = ns[batch.groupCount]
        parent = .allocate(capacity: m); depth = .allocate(capacity: m); owner = .allocate(capacity: m)
        segStart = .allocate(capacity: m); segEnd = .allocate(capacity: m); isLeaf = .allocate(capacity: m)
        segNode = .allocate(capacity: segOff[rc]); used = .allocate(capacity: batch.groupCount)
        isLeaf.initialize(repeating: 0); parent.initialize(repeating: -1); depth.initialize(repeating: 0)
        owner.initialize(repeating: 0); segStart.initialize(repeating: 0); segEnd.initialize(repeating: 0)
        let trie = self
        let ownLeaf = leaves == .ownLeaf
        batch.tokens.withUnsafeBufferPointer { tok in
            let tp = SharedPointer(tok)
            StepTrie.forEachGroup(batch) { g in
                trie.buildGroup(g, gi: gi, batch: batch, stepOffsets: so, ends: ends, tokens: tp, ownLeaf: ownLeaf)
            }
        }
    }

    /// Runs `body(g)` for every group, in parallel when the batch is large (groups write disjoint ranges).
    static func forEachGroup(_ batch: RolloutBatch, _ body: @Sendable (Int) -> Void) {
        let g = batch.groupCount
        if batch.tokenCount > CreditKernels.parallelTokenThreshold && g > 1 {
            DispatchQueue.concurrentPerform(iterations: g, execute: body)
        } else {
            for k in 0 ..< g { body(k) }
        }
    }

    private func buildGroup(_ g: Int, gi: RolloutBatch.GroupIndex, batch: RolloutBatch, stepOffsets so: [Int],
                            ends: [Int], tokens: SharedPointer<Int32>, ownLeaf: Bool) {
        let base = nodeStart[g]
        let offsets = batch.offsets
        // Mergeable segment j of response r: [lo, hi) relative to its start.
        @inline(__always) func mergeable(_ r: Int) -> Int { so[r + 1] - so[r] }
        @inline(__always) func bounds(_ r: Int, _ j: Int) -> (Int, Int) {
            (j == 0 ? 0 : ends[so[r] &+ j &- 1], ends[so[r] &+ j])
        }
        @inline(__always) func compareSeg(_ a: Int, _ b: Int, _ j: Int) -> Int {
            let (la, ha) = bounds(a, j), (lb, hb) = bounds(b, j)
            let na = ha - la, nb = hb - lb
            if let t = tokens.base {
                let c = memcmp(t + offsets[a] + la, t + offsets[b] + lb, Swift.min(na, nb) * 4)
                if c != 0 { return c < 0 ? -1 : 1 }
            }
            return na == nb ? 0 : (na < nb ? -1 : 1)
        }
        var order = Array(gi.members[gi.start[g] ..< gi.start[g + 1]])  // [n] O(group) scratch
        order.sort { a, b in
            let k = Swift.min(mergeable(a), mergeable(b))
            for j in 0 ..< k { let c = compareSeg(a, b, j); if c != 0 { return c < 0 } }
            return mergeable(a) != mergeable(b) ? mergeable(a) < mergeable(b) : a < b
        }
        // Root.
        parent[base] = -1; depth[base] = 0; segStart[base] = 0; segEnd[base] = 0
        owner[base] = Int32(truncatingIfNeeded: gi.start[g] < gi.start[g + 1] ? gi.members[gi.start[g]] : 0)
        var count = 1
        var stack = [Int32](); stack.reserveCapacity(16)   // nodes on the previous response's path
        var prev = -1
        for r in order {
            var lcp = 0
            if prev >= 0 {
                let k = Swift.min(mergeable(prev), mergeable(r), stack.count)
                while lcp < k && compareSeg(prev, r, lcp) == 0 { lcp &+= 1 }
            }
            stack.removeLast(stack.count - lcp)
            for j in 0 ..< lcp {
                let v = Int(stack[j])
                if Int32(r) < owner[v] { owner[v] = Int32(r) }
                segNode[segOffsets[r] &+ j] = stack[j]
            }
            let k = mergeable(r)
            for j in lcp ..< k {
                let v = base &+ count; count &+= 1
                let (lo, hi) = bounds(r, j)
                parent[v] = j == 0 ? Int32(base) : stack[j - 1]
                depth[v] = Int32(j &+ 1); owner[v] = Int32(r)
                segStart[v] = Int32(lo); segEnd[v] = Int32(hi)
                stack.append(Int32(v))
                segNode[segOffsets[r] &+ j] = Int32(v)
            }
            if ownLeaf {
                let v = base &+ count; count &+= 1
                parent[v] = k == 0 ? Int32(base) : stack[k - 1]
                depth[v] = Int32(k &+ 1); owner[v] = Int32(r); isLeaf[v] = 1
                segStart[v] = Int32(k == 0 ? 0 : ends[so[r] &+ k &- 1]); segEnd[v] = Int32(batch.length(r))
                segNode[segOffsets[r] &+ k] = Int32(v)
            }
            prev = r
        }
        used[g] = Int32(count)
    }
}

extension StepTrie {
    /// The node where response r's path ends (its last segment, or the group root for a response without
    /// segments).
    @inline(__always) func terminal(_ r: Int, group g: Int) -> Int {
        segOffsets[r + 1] > segOffsets[r] ? Int(segNode[segOffsets[r + 1] - 1]) : nodeStart[g]
    }

    /// For every node of group g (local index `v - nodeStart[g]`), the mean of `x[r]` over the responses
    /// whose path passes through it, each counted once. `[nodes of g]`.
    func subtreeMeans(_ g: Int, members: ArraySlice<Int>, _ x: [Double]) -> [Double] {
        let lo = nodeStart[g], n = Int(used[g])
        var sum = [Double](repeating: 0, count: n), cnt = [Double](repeating: 0, count: n)
        for r in members { let v = terminal(r, group: g) &- lo; sum[v] += x[r]; cnt[v] += 1 }
        var v = n &- 1
        while v > 0 { let p = Int(parent[lo &+ v]) &- lo; sum[p] += sum[v]; cnt[p] += cnt[v]; v &-= 1 }
        for u in 0 ..< n { sum[u] = cnt[u] > 0 ? sum[u] / cnt[u] : 0 }
        return sum
    }

    /// Writes `nodeValue[local node] * mask` over every token of every segment of the group's responses.
    func fillTokens(_ g: Int, members: ArraySlice<Int>, _ nodeValue: [Double], batch: RolloutBatch,
                    mask: UnsafePointer<UInt8>, out: UnsafeMutablePointer<Double>) {
        let lo = nodeStart[g]
        for r in members {
            let base = batch.offsets[r]
            for s in segOffsets[r] ..< segOffsets[r + 1] {
                let v = Int(segNode[s]), a = nodeValue[v &- lo]
                for t in (base &+ Int(segStart[v])) ..< (base &+ Int(segEnd[v])) { out[t] = mask[t] != 0 ? a : 0 }
            }
        }
    }
}
