import FineGrain

/// A model trained beside the policy with its own AdamW: the critic of GAE methods, PRIME's implicit PRM.
final class AuxiliaryModel {
    let model: GPT
    let optimizer: AdamW

    init(copying policy: GPT) throws {
        model = policy.copy()
        optimizer = try AdamW(layout: model.layout, weightDecay: 0)
    }

    init(model: GPT, optimizer: AdamW) { self.model = model; self.optimizer = optimizer }

    /// One clipped AdamW update from the gradients the caller accumulated.
    func step(learningRate: Float, maxGradNorm: Float) throws {
        _ = GradientClipping.clipGlobalNorm(&model.gradients, maxNorm: maxGradNorm)
        try optimizer.update(parameters: &model.parameters, gradients: model.gradients, learningRate: learningRate)
    }
}

/// The critic: a copy of the warm-started policy whose LM-head output channel 0 is read as the value of the
/// state at each position. Channel 0 is PAD's row of the tied head; PAD never occurs inside a sequence, so
/// repurposing it costs nothing (candid trade-off: a separate value head would save the unused channels'
/// compute, but this reuses the tested forward/backward pair unchanged).
final class Critic {
    let aux: AuxiliaryModel
    private var lastLogits: [Float] = []
    static let channel = Int(Vocabulary.pad)

    init(copying policy: GPT) throws { aux = try AuxiliaryModel(copying: policy) }
    init(aux: AuxiliaryModel) { self.aux = aux }

    /// Values `[N]` of the states before each response token; keeps activations for `update`.
    func values(_ packed: PackedSequences) throws -> [Double] {
        let positions = packed.positions
        lastLogits = try aux.model.forward(tokens: packed.tokens, batch: packed.batch, length: packed.length)
        return packed.gather(logits: lastLogits, vocab: aux.model.config.vocabSize, channel: Self.channel, at: positions)
    }

    /// Clipped value loss (registry `value_loss`) against `returns`, one AdamW step. Returns the loss value.
    func update(_ packed: PackedSequences, batch: RolloutBatch, vpreds: [Double], returns: [Double],
                learningRate: Float, maxGradNorm: Float) throws -> Double {
        var input = LossInput(offsets: batch.offsets, mask: batch.mask)
        input.vpreds = vpreds; input.values = vpreds; input.returns = returns
        let out = try Registry.loss("value_loss", input: input, params: ["cliprange_value": .number(0.5)])
        let positions = packed.positions
        let v = aux.model.config.vocabSize
        var dLogits = [Float](repeating: 0, count: packed.batch * packed.length * v)
        for (n, p) in positions.enumerated() { dLogits[p * v + Self.channel] = Float(out.gradient[n]) }
        aux.model.zeroGradients()
        try aux.model.backward(dLogits: dLogits)
        try aux.step(learningRate: learningRate, maxGradNorm: maxGradNorm)
        return out.value
    }
}

/// PRIME's implicit process reward model: a copy of the warm-started policy, trained online with the
/// registry's `prime_ce` loss on the outcome labels (PRIME, "Process Reinforcement through Implicit
/// Rewards", 2025); its log-probs against the frozen reference give the implicit token rewards.
final class ImplicitPRM {
    let aux: AuxiliaryModel
    private var targets: [Int32] = []

    init(copying policy: GPT) throws { aux = try AuxiliaryModel(copying: policy) }
    init(aux: AuxiliaryModel) { self.aux = aux }

    /// PRM log-probs `[N]` of the response tokens; keeps activations for `update`.
    func logprobs(_ packed: PackedSequences) throws -> [Double] {
        targets = packed.targets
        let positions = packed.positions
        let lp = try aux.model.logprobs(tokens: packed.tokens, targets: packed.targets, batch: packed.batch, length: packed.length)
        return packed.gather(lp.logprobs, at: positions)
    }

    /// One cross-entropy step on the outcome labels; returns the loss value.
    func update(_ packed: PackedSequences, batch: RolloutBatch, prmLogprobs: [Double], refLogprobs: [Double],
                labels: [Double], learningRate: Float, maxGradNorm: Float) throws -> Double {
        var input = LossInput(offsets: batch.offsets, mask: batch.mask)
        input.logprob = prmLogprobs; input.refLogprob = refLogprobs
        var perToken = [Double](repeating: 0, count: batch.tokenCount)
        for r in 0 ..< batch.count { for i in batch.range(r) { perToken[i] = labels[r] } }
        input.returns = perToken
        let out = try Registry.loss("prime_ce", input: input)
        let positions = packed.positions
        aux.model.zeroGradients()
        try aux.model.backward(targets: targets, dLogprob: packed.scatter(out.gradient, at: positions))
        try aux.step(learningRate: learningRate, maxGradNorm: maxGradNorm)
        return out.value
    }
}
