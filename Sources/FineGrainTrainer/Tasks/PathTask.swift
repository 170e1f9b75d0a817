import FineGrain

/// Path finding in a random layered DAG with dead ends: an early wrong turn cannot be undone.
///
/// The graph has a start node `S` (layer 0) and `layers` layers of `width` nodes, lettered `a`, `b`, ...
/// layer by layer (layer 1 is `a..c` for width 3, layer 2 `d..f`, ...). Every edge goes from one layer
/// to the next; the goal is one node of the last layer. A node is *live* when the goal is reachable from
/// it, *dead* otherwise (no out-edges, or only edges into dead nodes). Every problem has a live start and
/// at least one dead successor of the start, so the first move can doom the answer.
///
/// Prompt: the edges, sorted, as two-letter pairs joined by `,`, then `?`, the goal, `=`.
/// Response: the visited nodes, one letter per move (exactly `layers` moves), then EOS:
///
///     <bos>Sa,Sb,ad,ae,bf,dg,eh,fi,gj,hk?k=   aehk<eos>
///
/// Oracle: move `i` is correct iff every move so far follows an edge and the goal is reachable from the
/// node reached (dead nodes cannot reach it, and every path takes exactly `layers` moves, so this is
/// reachability within the remaining budget); after the first incorrect move all later moves are
/// incorrect. Each non-EOS token is one step, the EOS belonging to the last. Outcome 1 iff the moves
/// follow edges from `S` to the goal and the response ends with EOS right after the last move.
public struct PathTask: VerifiableTask {
    public struct Problem: Sendable, Equatable {
        /// Successors of each node, sorted; node 0 is `S`, node `1 + (l - 1) * width + j` is node `j`
        /// of layer `l`.
        public var successors: [[Int]]
        public var goal: Int
        public init(successors: [[Int]], goal: Int) { self.successors = successors; self.goal = goal }
    }

    public let name = "path"
    public let vocabulary: Vocabulary
    /// Number of layers after the start (= number of moves).
    public let layers: Int
    /// Nodes per layer.
    public let width: Int

    /// Throws unless `layers >= 2`, `width >= 2` and `layers * width <= 26`.
    public init(layers: Int = 4, width: Int = 3) throws {
        guard layers >= 2 else { throw FineGrainError.invalidParameter(name: "layers", method: "path", reason: "must be at least 2, got \(layers)") }
        guard width >= 2 else { throw FineGrainError.invalidParameter(name: "width", method: "path", reason: "must be at least 2, got \(width)") }
        guard layers * width <= 26 else {
            throw FineGrainError.invalidParameter(name: "width", method: "path", reason: "layers * width must be at most 26 (one letter per node), got \(layers * width)")
        }
        self.layers = layers
        self.width = width
        let letters = (0 ..< layers * width).map { Character(Unicode.Scalar(UInt8(97 + $0))) }
        self.vocabulary = try Vocabulary(symbols: ["S"] + letters + [",", "?", "="])
    }

    var nodeCount: Int { 1 + layers * width }
    func layer(_ node: Int) -> Int { node == 0 ? 0 : 1 + (node - 1) / width }
    func nodes(inLayer l: Int) -> [Int] { l == 0 ? [0] : Array((1 + (l - 1) * width) ..< (1 + l * width)) }
    func label(_ node: Int) -> Character { node == 0 ? "S" : Character(Unicode.Scalar(UInt8(96 + node))) }
    func node(_ token: Int32) -> Int? {
        guard let c = vocabulary.symbol(token), let a = c.asciiValue, a >= 97, Int(a) - 96 < nodeCount else { return nil }
        return Int(a) - 96
    }

    /// Most edges a problem can have: up to 3 out of the start, up to 2 out of every other node.
    var maxEdges: Int { min(width, 3) + (layers - 1) * width * min(width, 2) }
    public var maxPromptLength: Int { 3 * maxEdges + 3 }
    public var maxResponseLength: Int { layers + 1 }

    /// Nodes from which the goal is reachable.
    public func live(_ problem: Problem) -> [Bool] {
        var live = [Bool](repeating: false, count: problem.successors.count)
        for v in stride(from: live.count - 1, through: 0, by: -1) {
            live[v] = v == problem.goal || problem.successors[v].contains { live[$0] }
        }
        return live
    }

    /// Plants a random start-to-goal path, adds random edges (2-3 out of the start, 0-2 out of the other
    /// nodes), and makes a start successor dead when none is: one off the planted path loses its edges.
    public func sampleProblem(rng: inout SplitMix64) -> Problem {
        func pick(_ xs: [Int]) -> Int { xs[Int(rng.next() % UInt64(xs.count))] }
        var succ = [Set<Int>](repeating: [], count: nodeCount)
        let goal = pick(nodes(inLayer: layers))
        var path = [0]
        for l in 1 ..< layers { path.append(pick(nodes(inLayer: l))) }
        path.append(goal)
        for i in 0 ..< layers { succ[path[i]].insert(path[i + 1]) }
        for l in 0 ..< layers {
            for v in nodes(inLayer: l) {
                let cap = v == 0 ? min(width, 3) : min(width, 2)
                let want = v == 0 ? 2 + Int(rng.next() % UInt64(cap - 1)) : [0, 1, 1, 2, 2][Int(rng.next() % 5)]
                var tries = 0
                while succ[v].count < min(want, cap), tries < 16 { succ[v].insert(pick(nodes(inLayer: l + 1))); tries += 1 }
            }
        }
        var problem = Problem(successors: succ.map { $0.sorted() }, goal: goal)
        let isLive = live(problem)
        if !problem.successors[0].contains(where: { !isLive[$0] }) {
            let offPath = nodes(inLayer: 1).filter { $0 != path[1] }
            let victim = pick(offPath)
            problem.successors[victim] = []
            if !problem.successors[0].contains(victim) {
                if problem.successors[0].count >= min(width, 3) {
                    problem.successors[0].removeAll { $0 != path[1] && $0 != victim }
                }
                problem.successors[0] = (problem.successors[0] + [victim]).sorted()
            }
        }
        return problem
    }

    public func prompt(_ problem: Problem) -> [Int32] {
        [Vocabulary.bos] + tokens(describe(problem) + "=")
    }

    /// `Sa,Sb,...?k`: the sorted edge list and the goal.
    public func describe(_ problem: Problem) -> String {
        var edges: [String] = []
        for (v, s) in problem.successors.enumerated() { for w in s { edges.append(String([label(v), label(w)])) } }
        return edges.joined(separator: ",") + "?" + String(label(problem.goal))
    }

    /// A walk from `S`; each move is, with probability `noise`, a plausible mistake: an edge into a dead
    /// node when the current node has one, otherwise a jump to a next-layer node that is not a successor
    /// (when every next-layer node is a live successor, the move stays correct). Once doomed, the walk
    /// continues along any edge (or jumps when there is none), so every demonstration has `layers` moves.
    public func demonstration(_ problem: Problem, noise: Double, rng: inout SplitMix64) throws -> [Int32] {
        try checkNoise(noise)
        func pick(_ xs: [Int]) -> Int { xs[Int(rng.next() % UInt64(xs.count))] }
        let isLive = live(problem)
        var current = 0, out: [Int32] = []
        for l in 1 ... layers {
            let succ = problem.successors[current]
            let good = succ.filter { isLive[$0] }, bad = succ.filter { !isLive[$0] }
            let jumps = nodes(inLayer: l).filter { !succ.contains($0) }
            var next: Int
            if good.isEmpty {
                next = succ.isEmpty ? pick(nodes(inLayer: l)) : pick(succ)
            } else if rng.uniform() < noise, !(bad.isEmpty && jumps.isEmpty) {
                next = bad.isEmpty ? pick(jumps) : pick(bad)
            } else {
                next = pick(good)
            }
            out += tokens(String(label(next)))
            current = next
        }
        return out + [Vocabulary.eos]
    }

    public func score(_ problem: Problem, response: [Int32]) -> TaskScore {
        let r = Array(untilEOS(response))
        let isLive = live(problem)
        let endsWithEOS = r.last == Vocabulary.eos
        let moves = endsWithEOS ? r.count - 1 : r.count
        var steps: [TaskStep] = [], current = 0, onTrack = true, allLetters = true
        for i in 0 ..< moves {
            let v = node(r[i])
            if v == nil { allLetters = false }
            let follows = onTrack && v.map { problem.successors[current].contains($0) } == true
            let ok = follows && isLive[v ?? 0]
            if follows, let v { current = v }
            onTrack = follows
            steps.append(TaskStep(end: i == moves - 1 ? r.count : i + 1, reward: ok ? 1 : 0, correct: ok))
        }
        if steps.isEmpty, !r.isEmpty { steps.append(TaskStep(end: r.count, reward: 0, correct: false)) }
        let wellFormed = endsWithEOS && allLetters && moves == layers
        let correct = wellFormed && onTrack && current == problem.goal
        return TaskScore(correct: correct, wellFormed: wellFormed, steps: steps)
    }

    private func tokens(_ text: String) -> [Int32] {
        text.map { (try? vocabulary.id($0)) ?? Vocabulary.pad }
    }
}
