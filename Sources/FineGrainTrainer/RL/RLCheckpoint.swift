import FineGrain
import Foundation

/// A run's checkpoint: a folder `checkpoint/` holding safetensors files for the policy (with its AdamW
/// state, the run's RNG state and counters in the metadata), the frozen reference, and the critic / PRM
/// with their optimisers where the method has them. Written to `checkpoint.tmp/` first and swapped in by
/// renames, so a run killed at any moment leaves either the previous or the new checkpoint whole.
enum RLCheckpoint {
    struct State {
        var policy: GPT, optimizer: AdamW, reference: FrozenReference
        var critic: AuxiliaryModel?, prm: AuxiliaryModel?
        var rngState: UInt64, step: Int, tokensSeen: Int, elapsed: Double
        var initialAccuracy: Double?, lastAccuracy: Double?, warmStartAccuracy: Double?
    }

    static func folder(_ out: URL) -> URL { out.appendingPathComponent("checkpoint") }

    static func save(_ t: RLTrainer, out: URL) throws {
        let fm = FileManager.default
        let dir = folder(out), tmp = out.appendingPathComponent("checkpoint.tmp"), old = out.appendingPathComponent("checkpoint.old")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        let configJSON = String(decoding: try JSONEncoder().encode(t.config), as: UTF8.self)
        func num(_ x: Double?) -> String { x.map { String($0) } ?? "" }
        let meta = ["step": String(t.step), "tokens_seen": String(t.tokensSeen), "elapsed": String(t.elapsed),
                    "initial_accuracy": num(t.initialAccuracy), "last_accuracy": num(t.lastAccuracy),
                    "warm_start_accuracy": num(t.warmStartAccuracy), "rl_config": configJSON]
        try TrainerCheckpoint(model: t.policy, optimizer: t.optimizer, rngState: [t.rng.state], metadata: meta)
            .save(to: tmp.appendingPathComponent("policy.safetensors"))
        try TrainerCheckpoint(model: t.reference.model).save(to: tmp.appendingPathComponent("reference.safetensors"))
        if let c = t.critic {
            try TrainerCheckpoint(model: c.aux.model, optimizer: c.aux.optimizer).save(to: tmp.appendingPathComponent("critic.safetensors"))
        }
        if let p = t.prm {
            try TrainerCheckpoint(model: p.aux.model, optimizer: p.aux.optimizer).save(to: tmp.appendingPathComponent("prm.safetensors"))
        }
        try? fm.removeItem(at: old)
        if fm.fileExists(atPath: dir.path) { try fm.moveItem(at: dir, to: old) }
        try fm.moveItem(at: tmp, to: dir)
        try? fm.removeItem(at: old)
    }

    /// The checkpoint of `out` (or the previous one if a swap was interrupted), nil when there is none.
    /// Throws when it belongs to another configuration (resuming it would silently change the run).
    static func load(out: URL, config: RLConfig) throws -> RLTrainer? {
        let fm = FileManager.default
        var dir = folder(out)
        if !fm.fileExists(atPath: dir.appendingPathComponent("policy.safetensors").path) {
            dir = out.appendingPathComponent("checkpoint.old")
            guard fm.fileExists(atPath: dir.appendingPathComponent("policy.safetensors").path) else { return nil }
        }
        let p = try TrainerCheckpoint.load(from: dir.appendingPathComponent("policy.safetensors"))
        guard let cj = p.metadata["rl_config"], let saved = try? JSONDecoder().decode(RLConfig.self, from: Data(cj.utf8)) else {
            throw FineGrainError.invalidField(field: "checkpoint", reason: "\(dir.path) has no run configuration")
        }
        var a = saved, b = config
        a.steps = 0; b.steps = 0  // a run may be resumed with more steps
        guard a == b else {
            throw FineGrainError.invalidField(field: "checkpoint",
                reason: "\(dir.path) belongs to another configuration (method \(saved.method), seed \(saved.seed)); use a new --out or remove it")
        }
        guard let policyOpt = try p.makeOptimizer(), let rng = p.rngState.first else {
            throw FineGrainError.invalidField(field: "checkpoint", reason: "policy checkpoint lacks optimiser or RNG state")
        }
        func aux(_ name: String) throws -> AuxiliaryModel? {
            let f = dir.appendingPathComponent(name)
            guard fm.fileExists(atPath: f.path) else { return nil }
            let c = try TrainerCheckpoint.load(from: f)
            guard let opt = try c.makeOptimizer() else {
                throw FineGrainError.invalidField(field: "checkpoint", reason: "\(name) lacks its optimiser state")
            }
            return AuxiliaryModel(model: try c.makeModel(), optimizer: opt)
        }
        let ref = try TrainerCheckpoint.load(from: dir.appendingPathComponent("reference.safetensors")).makeModel()
        let m = p.metadata
        let state = State(policy: try p.makeModel(), optimizer: policyOpt, reference: FrozenReference(copying: ref),
                          critic: try aux("critic.safetensors"), prm: try aux("prm.safetensors"), rngState: rng,
                          step: Int(m["step"] ?? "") ?? 0, tokensSeen: Int(m["tokens_seen"] ?? "") ?? 0,
                          elapsed: Double(m["elapsed"] ?? "") ?? 0, initialAccuracy: Double(m["initial_accuracy"] ?? ""),
                          lastAccuracy: Double(m["last_accuracy"] ?? ""), warmStartAccuracy: Double(m["warm_start_accuracy"] ?? ""))
        return try RLTrainer(config: config, restoring: state)
    }
}
