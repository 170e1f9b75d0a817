import FineGrain

/// The per-position quantities the RL loop needs, computed from the logits of the last `forward`.
/// `targets [B*T]` gives, per position, the token whose log-probability is wanted (usually the next
/// token: see `nextTokenTargets`). All functions validate shapes and ids and throw `FineGrainError`.
extension GPT {
    /// `targets[b, t] = tokens[b, t+1]`, and `pad` at the last position of each row.
    public static func nextTokenTargets(tokens: [Int32], batch: Int, length: Int, pad: Int32 = 0) -> [Int32] {
        var out = [Int32](repeating: pad, count: tokens.count)
        for b in 0 ..< batch {
            for t in 0 ..< Swift.max(0, length - 1) where b * length + t + 1 < tokens.count {
                out[b * length + t] = tokens[b * length + t + 1]
            }
        }
        return out
    }

    func requireForward(_ method: String) throws -> Activations {
        guard let a = acts, lastBatch > 0 else {
            throw FineGrainError.unsupported(method: method, reason: "call forward first")
        }
        return a
    }

    func validateTargets(_ targets: [Int32], _ a: Activations, field: String = "targets") throws {
        let n = a.B * a.T
        if targets.count != n {
            throw FineGrainError.invalidField(field: field, reason: "expected B*T = \(n) ids, got \(targets.count)")
        }
        let v = Int32(config.vocabSize)
        if let i = targets.firstIndex(where: { $0 < 0 || $0 >= v }) {
            throw FineGrainError.invalidField(field: field, reason: "token id \(targets[i]) at index \(i) is outside the vocabulary 0..<\(v)")
        }
    }

    func validatePerPosition(_ x: [Float]?, _ a: Activations, field: String) throws {
        guard let x else { return }
        if x.count != a.B * a.T {
            throw FineGrainError.invalidField(field: field, reason: "expected B*T = \(a.B * a.T) values, got \(x.count)")
        }
        if let i = x.firstIndex(where: { !$0.isFinite }) {
            throw FineGrainError.invalidField(field: field, reason: "value at index \(i) is not finite")
        }
    }

    func checkTemperature(_ t: Float) throws {
        if !(t > 0) || !t.isFinite {
            throw FineGrainError.invalidParameter(name: "temperature", method: "GPT.logprobs", reason: "must be finite and > 0, got \(t)")
        }
    }

    /// Per-position `log p(targets[t] | tokens[..t])` at `temperature` (logits divided by it) and,
    /// when `entropies` is true, per-position entropies of that distribution; from the last `forward`.
    public func logprobs(targets: [Int32], temperature: Float = 1, entropies wantEntropy: Bool = false) throws -> (logprobs: [Float], entropies: [Float]?) {
        let a = try requireForward("GPT.logprobs")
        try validateTargets(targets, a)
        try checkTemperature(temperature)
        let n = a.B * a.T
        var lp = [Float](repeating: 0, count: n)
        var ent: [Float]? = wantEntropy ? [Float](repeating: 0, count: n) : nil
        targets.withUnsafeBufferPointer { tb in
            lp.withUnsafeMutableBufferPointer { lb in
                if ent != nil {
                    ent!.withUnsafeMutableBufferPointer { eb in
                        LogSoftmax.forward(logprobs: lb.baseAddress!, entropies: eb.baseAddress!, logits: a.logits.p,
                                           targets: tb.baseAddress!, N: n, V: config.vocabSize, temperature: temperature)
                    }
                } else {
                    LogSoftmax.forward(logprobs: lb.baseAddress!, entropies: nil, logits: a.logits.p,
                                       targets: tb.baseAddress!, N: n, V: config.vocabSize, temperature: temperature)
                }
            }
        }
        timer?.lap("f.logsoftmax")
        return (lp, ent)
    }

    /// Forward then `logprobs(targets:)`: the one call the RL loop makes per batch.
    public func logprobs(tokens: [Int32], targets: [Int32], batch: Int, length: Int,
                         temperature: Float = 1, entropies: Bool = false) throws -> (logprobs: [Float], entropies: [Float]?) {
        try validate(tokens: tokens, batch: batch, length: length)
        forwardValidated(tokens: tokens, batch: batch, length: length)
        return try logprobs(targets: targets, temperature: temperature, entropies: entropies)
    }

    /// Backward for a loss given through its per-position derivatives `dLogprob[t] = dL/d log p(targets[t])`
    /// and optionally `dEntropy[t] = dL/dH_t`; forms `dLogits = [g (onehot - p) - e p (log p + H)] / tau`
    /// internally (see `LogSoftmax`) and accumulates parameter gradients. Padding: pass zeros there.
    public func backward(targets: [Int32], dLogprob: [Float], dEntropy: [Float]? = nil, temperature: Float = 1) throws {
        let a = try requireForward("GPT.backward")
        try validateTargets(targets, a)
        try validatePerPosition(dLogprob, a, field: "dLogprob")
        try validatePerPosition(dEntropy, a, field: "dEntropy")
        try checkTemperature(temperature)
        let n = a.B * a.T
        targets.withUnsafeBufferPointer { a.targets.update(from: $0.baseAddress!, count: n) }
        dLogprob.withUnsafeBufferPointer { a.dLogprob.p.update(from: $0.baseAddress!, count: n) }
        if let dEntropy { dEntropy.withUnsafeBufferPointer { a.dEntropy.p.update(from: $0.baseAddress!, count: n) } }
        timer?.lap("validate")
        LogSoftmax.backward(dlogits: a.dLogits.p, logits: a.logits.p, targets: a.targets, dLogprob: a.dLogprob.p,
                            dEntropy: dEntropy == nil ? nil : UnsafePointer(a.dEntropy.p), N: n, V: config.vocabSize,
                            temperature: temperature)
        timer?.lap("b.logsoftmax")
        backwardFromStoredDLogits(a)
    }

    /// Supervised warm start: weighted mean cross-entropy `-sum_t w_t log p(targets[t]) / sum_t w_t` of the
    /// last `forward` (weights 0 = padding / prompt positions).
    public func crossEntropyLoss(targets: [Int32], weights: [Float]) throws -> Double {
        let a = try requireForward("GPT.crossEntropyLoss")
        try validateTargets(targets, a)
        try validatePerPosition(weights, a, field: "weights")
        let n = a.B * a.T
        return targets.withUnsafeBufferPointer { tb in
            weights.withUnsafeBufferPointer { wb in
                LogSoftmax.crossEntropy(logits: a.logits.p, targets: tb.baseAddress!, weights: wb.baseAddress!,
                                        dLogprob: nil, N: n, V: config.vocabSize)
            }
        }
    }

    /// Forward, weighted cross-entropy and backward in one call; returns the loss. Gradients accumulate.
    public func supervisedStep(tokens: [Int32], targets: [Int32], weights: [Float], batch: Int, length: Int) throws -> Double {
        try validate(tokens: tokens, batch: batch, length: length)
        let a = forwardValidated(tokens: tokens, batch: batch, length: length)
        try validateTargets(targets, a)
        try validatePerPosition(weights, a, field: "weights")
        let n = a.B * a.T
        targets.withUnsafeBufferPointer { a.targets.update(from: $0.baseAddress!, count: n) }
        let loss = weights.withUnsafeBufferPointer { wb in
            LogSoftmax.crossEntropy(logits: a.logits.p, targets: a.targets, weights: wb.baseAddress!,
                                    dLogprob: a.dLogprob.p, N: n, V: config.vocabSize)
        }
        LogSoftmax.backward(dlogits: a.dLogits.p, logits: a.logits.p, targets: a.targets, dLogprob: a.dLogprob.p,
                            dEntropy: nil, N: n, V: config.vocabSize)
        backwardFromStoredDLogits(a)
        return loss
    }
}
