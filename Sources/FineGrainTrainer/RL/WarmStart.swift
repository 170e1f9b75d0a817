import FineGrain
import Foundation

/// Supervised warm start on noisy demonstrations, so RL starts from a policy that is sometimes right and
/// has room to improve. Every demonstration step is corrupted with probability `warmStartNoise` by the
/// task itself (`VerifiableTask.demonstration`), which caps how good imitation can get.
enum WarmStart {
    /// The warm-started policy for `config`, from `cache/<key>.safetensors` when present (every method of a
    /// comparison shares one warm start per seed), else trained and written there.
    static func policy(config: RLConfig, task: AnyVerifiableTask, cache: URL?, log: (String) -> Void) throws -> GPT {
        let file = cache?.appendingPathComponent("warmstart-\(stableHash(config.warmStartKey)).safetensors")
        if let file, FileManager.default.fileExists(atPath: file.path) {
            let ck = try TrainerCheckpoint.load(from: file)
            if ck.metadata["warm_start_key"] == config.warmStartKey { return try ck.makeModel() }
        }
        let model = try GPT(config: modelConfig(config, task: task), seed: config.seed &+ 1)
        try train(model, config: config, task: task, log: log)
        if let file, let cache {
            try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
            try TrainerCheckpoint(model: model, metadata: ["warm_start_key": config.warmStartKey]).save(to: file)
        }
        return model
    }

    static func modelConfig(_ c: RLConfig, task: AnyVerifiableTask) -> GPTConfig {
        GPTConfig(vocabSize: task.vocabulary.size, contextLength: task.maxPromptLength + task.maxResponseLength,
                  dModel: c.dModel, nLayers: c.nLayers, nHeads: c.nHeads)
    }

    /// Teacher-forced cross-entropy on the demonstration tokens only (prompt positions weigh 0).
    static func train(_ model: GPT, config: RLConfig, task: AnyVerifiableTask, log: (String) -> Void) throws {
        guard config.warmStartSteps > 0 else { return }
        var rng = SplitMix64(seed: config.seed &* 31 &+ 7)
        let opt = try AdamW(layout: model.layout, weightDecay: 0.01)
        let schedule = LearningRateSchedule.cosine(peak: config.warmStartLearningRate, warmup: 20,
                                                   total: config.warmStartSteps, minimum: config.warmStartLearningRate / 10)
        for s in 0 ..< config.warmStartSteps {
            var prompts = [[Int32]](), demos = [[Int32]]()
            for _ in 0 ..< config.warmStartBatch {
                let p = task.sampleProblem(rng: &rng)
                prompts.append(task.prompt(p))
                demos.append(try task.demonstration(p, noise: config.warmStartNoise, rng: &rng))
            }
            let packed = try PackedSequences(prompts: prompts, responses: demos)
            var weights: [Float]
            weights = packed.responseMask
            model.zeroGradients()
            let loss = try model.supervisedStep(tokens: packed.tokens, targets: packed.targets, weights: weights,
                                                batch: packed.batch, length: packed.length)
            _ = GradientClipping.clipGlobalNorm(&model.gradients, maxNorm: 1)
            try opt.update(parameters: &model.parameters, gradients: model.gradients, learningRate: schedule.rate(at: s))
            if (s + 1) % 50 == 0 || s + 1 == config.warmStartSteps {
                log(String(format: "warm start %d/%d  cross-entropy %.4f", s + 1, config.warmStartSteps, loss))
            }
        }
    }

    /// FNV-1a of the key, for a short file name.
    static func stableHash(_ s: String) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return String(h, radix: 16)
    }
}

/// Greedy evaluation on a fixed problem set.
enum Evaluation {
    static func problems(task: AnyVerifiableTask, count: Int, seed: UInt64) -> [AnyTaskProblem] {
        var rng = SplitMix64(seed: seed)
        return (0 ..< count).map { _ in task.sampleProblem(rng: &rng) }
    }

    /// Fraction of problems whose response the oracle scores correct, sampled at `temperature` (0 = greedy)
    /// with its own generator seeded by `seed`, so every method and run is evaluated on the same draws and
    /// the run's generator is untouched.
    ///
    /// Decision: the headline accuracy is sampled at the training temperature (1), the policy's expected
    /// reward. Greedy accuracy hides what RL changes here: a warm start on noisy demonstrations learns the
    /// noise as probability mass, and the mode is often right long before samples are.
    static func accuracy(policy: GPT, task: AnyVerifiableTask, problems: [AnyTaskProblem], temperature: Float = 1,
                         seed: UInt64 = 4242) throws -> Double {
        var rng = SplitMix64(seed: seed)
        let out = try policy.sample(prompts: problems.map(task.prompt), maxNewTokens: task.maxResponseLength,
                                    temperature: temperature, stopToken: Vocabulary.eos, rng: &rng)
        let correct = zip(problems, out.tokens).filter { task.score($0, response: $1).correct }.count
        return Double(correct) / Double(max(1, problems.count))
    }
}
