import FineGrain
import Foundation

/// The RL loop (DESIGN.md, "The embedded trainer"): sample a group per prompt with the KV-cache sampler,
/// score outcome and per-step oracle rewards, ask the registry for advantages and a loss by name, add the
/// k3 KL to a frozen reference, and step AdamW. One policy update per batch, so the sampler's log-probs
/// are the behaviour ("old") log-probs and PPO's ratio starts at 1.
public final class RLTrainer {
    public let config: RLConfig
    public let task: AnyVerifiableTask
    public let recipe: MethodRecipe
    let policy: GPT
    let optimizer: AdamW
    let reference: FrozenReference
    let critic: Critic?
    let prm: ImplicitPRM?
    /// The one generator every random draw of the run comes from (problems, sampling).
    var rng: SplitMix64
    public private(set) var step = 0
    public private(set) var tokensSeen = 0
    /// Wall seconds spent in RL steps so far (carried across resumes).
    public private(set) var elapsed = 0.0
    public private(set) var initialAccuracy: Double?
    public private(set) var lastAccuracy: Double?
    /// Accuracy of the warm-started policy before RL.
    public private(set) var warmStartAccuracy: Double?
    let evalProblems: [AnyTaskProblem]

    /// A fresh run: builds the task, warm-starts the policy (or loads the cached warm start), copies the
    /// reference (and critic / PRM where the method needs them).
    public init(config: RLConfig, warmStartCache: URL? = nil, log: (String) -> Void = { _ in }) throws {
        try config.validate()
        self.config = config
        task = try TaskCatalog.make(config.task, parameters: config.taskParameters)
        recipe = try MethodRecipe.named(config.method)
        let model = try WarmStart.policy(config: config, task: task, cache: warmStartCache, log: log)
        policy = model
        optimizer = try AdamW(layout: model.layout, weightDecay: 0)
        reference = FrozenReference(copying: model)
        critic = recipe.needsCritic ? try Critic(copying: model) : nil
        prm = recipe.signal == .implicitPRM ? try ImplicitPRM(copying: model) : nil
        rng = SplitMix64(seed: config.seed &* 0x9E37_79B9 &+ 17)
        evalProblems = Evaluation.problems(task: task, count: config.evalProblems, seed: config.evalSeed)
    }

    /// Restores a run from its checkpoint folder (see `RLCheckpoint`).
    init(config: RLConfig, restoring s: RLCheckpoint.State) throws {
        self.config = config
        task = try TaskCatalog.make(config.task, parameters: config.taskParameters)
        recipe = try MethodRecipe.named(config.method)
        policy = s.policy; optimizer = s.optimizer; reference = s.reference
        critic = s.critic.map(Critic.init(aux:)); prm = s.prm.map(ImplicitPRM.init(aux:))
        rng = SplitMix64(seed: 0); rng.state = s.rngState
        step = s.step; tokensSeen = s.tokensSeen; elapsed = s.elapsed
        initialAccuracy = s.initialAccuracy; lastAccuracy = s.lastAccuracy; warmStartAccuracy = s.warmStartAccuracy
        evalProblems = Evaluation.problems(task: task, count: config.evalProblems, seed: config.evalSeed)
    }

    /// Sampled (temperature-1) accuracy of the current policy on the fixed evaluation set.
    public func evaluate() throws -> Double {
        try Evaluation.accuracy(policy: policy, task: task, problems: evalProblems, temperature: config.temperature)
    }

    /// Greedy accuracy on the evaluation set (reported beside the sampled one).
    public func evaluateGreedy() throws -> Double {
        try Evaluation.accuracy(policy: policy, task: task, problems: evalProblems, temperature: 0)
    }

    /// Step 0: the accuracy before any RL update (the warm-started policy).
    public func evaluateInitial() throws -> [String: JSONValue] {
        let acc = try evaluate()
        initialAccuracy = acc; lastAccuracy = acc; warmStartAccuracy = acc
        return ["step": .number(0), "accuracy": .number(acc), "greedy_accuracy": .number(try evaluateGreedy()),
                "tokens_seen": .number(0)]
    }

    /// One RL step; returns its metrics line (DESIGN: reward mean, accuracy where evaluated, KL, entropy,
    /// advantage statistics, tokens/s).
    public func trainStep() throws -> [String: JSONValue] {
        let t0 = Date()
        let P = config.promptsPerStep, G = config.groupSize
        // 1. Sample a group of responses per prompt.
        var problems = [AnyTaskProblem](), prompts = [[Int32]](), groups = [Int]()
        for p in 0 ..< P {
            let problem = task.sampleProblem(rng: &rng)
            let prompt = task.prompt(problem)
            for _ in 0 ..< G { problems.append(problem); prompts.append(prompt); groups.append(p) }
        }
        let sample = try policy.sample(prompts: prompts, maxNewTokens: task.maxResponseLength, temperature: config.temperature,
                                       topP: config.topP, stopToken: Vocabulary.eos, rng: &rng)
        let responses = sample.tokens
        // 2. Score: outcome and the oracle's exact step rewards.
        let scores = zip(problems, responses).map { task.score($0, response: $1) }
        var batch = try TaskBatch.rollouts(groups: groups, responses: responses, scores: scores)
        batch.oldLogprob = sample.logprobs.flatMap { $0.map(Double.init) }
        let packed = try PackedSequences(prompts: prompts, responses: responses)
        let positions = packed.positions
        let refLP = packed.gather(try reference.logprobs(of: packed.tokens, targets: packed.targets, batch: packed.batch, length: packed.length), at: positions)
        batch.refLogprob = refLP
        try addMethodSignals(&batch, packed: packed, scores: scores)
        // 3. Advantages from the registry.
        var estParams = recipe.estimatorParams
        if recipe.signal == .oracleSegmentLabels {
            estParams["completeness_mean"] = .number(0.5); estParams["completeness_std"] = .number(0.5)
            estParams["completeness_scale"] = .number(0.5)
        }
        for (k, v) in config.estimatorParameters { estParams[k] = ParamValue(parsing: v) }
        let adv = try Registry.advantages(recipe.estimator, batch: batch, params: estParams)
        // 4. Policy loss + KL to the reference, gradient w.r.t. each response token's log-prob.
        let (lpF, entF) = try policy.logprobs(tokens: packed.tokens, targets: packed.targets, batch: packed.batch,
                                               length: packed.length, entropies: true)
        let newLP = packed.gather(lpF, at: positions)
        var input = LossInput(batch: batch, advantages: adv.advantages)
        input.logprob = newLP
        var lossParams = recipe.lossParams
        lossParams["clip_ratio"] = .number(config.clipRatio)
        if case .string("seq-mean-token-sum-norm")? = lossParams["loss_agg_mode"] {
            lossParams["loss_scale_factor"] = .number(Double(task.maxResponseLength))
        }
        let pg = try Registry.loss(recipe.loss, input: input, params: lossParams)
        let kl = try Registry.kl("low_var_kl").compute(newLP, refLP)
        let nValid = Double(max(1, batch.mask.reduce(0) { $0 + Int($1) }))
        var grad = pg.gradient
        var klMean = 0.0
        for i in 0 ..< grad.count where batch.mask[i] != 0 {
            grad[i] += config.klCoef * kl.gradient[i] / nValid
            klMean += kl.values[i] / nValid
        }
        policy.zeroGradients()
        try policy.backward(targets: packed.targets, dLogprob: packed.scatter(grad, at: positions))
        let gradNorm = GradientClipping.clipGlobalNorm(&policy.gradients, maxNorm: config.maxGradNorm)
        try optimizer.update(parameters: &policy.parameters, gradients: policy.gradients, learningRate: config.learningRate)
        // 5. Auxiliary models.
        var line = [String: JSONValue]()
        if let critic, let values = batch.value {
            let returns = adv.returns ?? adv.advantages
            line["value_loss"] = .number(try critic.update(packed, batch: batch, vpreds: values, returns: returns,
                                                           learningRate: config.auxLearningRate, maxGradNorm: config.maxGradNorm))
        }
        if let prm, let prmLP = batch.extraTokenColumns["prm_logprobs"] {
            line["prm_loss"] = .number(try prm.update(packed, batch: batch, prmLogprobs: prmLP, refLogprobs: refLP,
                                                      labels: batch.outcome ?? [], learningRate: config.auxLearningRate,
                                                      maxGradNorm: config.maxGradNorm))
        }
        // 6. Bookkeeping.
        step += 1
        tokensSeen += batch.tokenCount
        let seconds = Date().timeIntervalSince(t0)
        elapsed += seconds
        let ent = entF.map { packed.gather($0, at: positions) } ?? []
        let outcomes = batch.outcome ?? []
        line["step"] = .number(Double(step))
        line["reward_mean"] = .number(outcomes.reduce(0, +) / Double(max(1, outcomes.count)))
        line["train_accuracy"] = .number(Double(scores.filter(\.correct).count) / Double(max(1, scores.count)))
        line["kl"] = .number(klMean)
        line["entropy"] = .number(ent.isEmpty ? 0 : MaskedStats.maskedMean(ent, batch.mask))
        line["loss"] = .number(pg.value)
        for (k, v) in pg.metrics { line[k] = .number(v) }
        line["grad_norm"] = .number(Double(gradNorm))
        line.merge(Self.advantageStats(adv.advantages, batch.mask)) { a, _ in a }
        line["tokens"] = .number(Double(batch.tokenCount))
        line["tokens_seen"] = .number(Double(tokensSeen))
        line["tokens_per_s"] = .number(Double(batch.tokenCount) / max(seconds, 1e-9))
        line["seconds"] = .number(elapsed)
        if step % config.evalEvery == 0 || step == config.steps {
            let acc = try evaluate()
            lastAccuracy = acc
            line["accuracy"] = .number(acc)
            if step == config.steps { line["greedy_accuracy"] = .number(try evaluateGreedy()) }
        }
        return line
    }

    /// Inputs that only some methods read: critic values, PRM log-probs, oracle segment labels.
    func addMethodSignals(_ batch: inout RolloutBatch, packed: PackedSequences, scores: [TaskScore]) throws {
        if let critic { batch.value = try critic.values(packed) }
        if let prm {
            batch.extraTokenColumns["prm_logprobs"] = try prm.logprobs(packed)
            batch.extraTokenColumns["prm_ref_logprobs"] = batch.refLogprob
        }
        if recipe.signal == .oracleSegmentLabels {
            batch.extraStepColumns["step_factuality"] = scores.flatMap { $0.steps.map { $0.correct ? 1.0 : -1.0 } }
            batch.extraStepColumns["step_relevance"] = [Double](repeating: 0, count: batch.stepEnds?.count ?? 0)
        }
    }

    static func advantageStats(_ a: [Double], _ m: [UInt8]) -> [String: JSONValue] {
        var s = 0.0, ss = 0.0, mx = 0.0, n = 0.0
        for i in 0 ..< a.count where m[i] != 0 { s += a[i]; ss += a[i] * a[i]; mx = max(mx, abs(a[i])); n += 1 }
        let mean = n > 0 ? s / n : 0
        return ["adv_mean": .number(mean), "adv_std": .number(n > 0 ? max(0, ss / n - mean * mean).squareRoot() : 0),
                "adv_abs_max": .number(mx)]
    }
}
