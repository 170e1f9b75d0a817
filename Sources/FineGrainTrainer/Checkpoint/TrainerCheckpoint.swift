import FineGrain
import Foundation

/// Everything needed to resume training, stored as one safetensors file:
///
/// - `model.<name>` (F32): every parameter tensor, under its `ParameterLayout` name and shape;
/// - `optimizer.m.<name>`, `optimizer.v.<name>` (F32): AdamW moments (when an optimiser is saved);
/// - `optimizer.step` (I64 [1]): the AdamW update count;
/// - `rng.state` (U64 [n]): the trainer's generator state(s), e.g. `[SplitMix64.state]`;
/// - metadata: `format` = `finegrain-trainer`, `format_version`, `config` (GPTConfig as JSON),
///   `adamw` (hyper-parameters as JSON), plus the trainer's free-form map (task, method, ...).
public struct TrainerCheckpoint: Sendable, Equatable {
    public static let reservedMetadataKeys: Set<String> = ["format", "format_version", "config", "adamw"]

    public var config: GPTConfig
    public var parameters: [Float]
    public var optimizerM: [Float]?
    public var optimizerV: [Float]?
    public var optimizerStep: Int
    public var adamHyper: AdamHyper?
    public var rngState: [UInt64]
    public var metadata: [String: String]

    /// AdamW hyper-parameters saved beside the moments.
    public struct AdamHyper: Sendable, Equatable, Codable {
        public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    }

    /// Snapshot of a model (and optionally its optimiser) with the trainer's RNG state and metadata.
    public init(model: GPT, optimizer: AdamW? = nil, rngState: [UInt64] = [], metadata: [String: String] = [:]) {
        config = model.config
        parameters = model.parameters
        optimizerM = optimizer?.m
        optimizerV = optimizer?.v
        optimizerStep = optimizer?.step ?? 0
        adamHyper = optimizer.map { AdamHyper(beta1: $0.beta1, beta2: $0.beta2, eps: $0.eps, weightDecay: $0.weightDecay) }
        self.rngState = rngState
        self.metadata = metadata
    }

    public func save(to url: URL) throws {
        if let k = metadata.keys.first(where: { Self.reservedMetadataKeys.contains($0) }) {
            throw FineGrainError.invalidField(field: "metadata.\(k)", reason: "key is reserved by the checkpoint format")
        }
        let layout = ParameterLayout(config: config)
        var tensors: [SafeTensor] = []
        for v in layout.tensors { tensors.append(.float32("model." + v.name, shape: v.shape, Array(parameters[v.range]))) }
        if let m = optimizerM, let vv = optimizerV {
            for v in layout.tensors { tensors.append(.float32("optimizer.m." + v.name, shape: v.shape, Array(m[v.range]))) }
            for v in layout.tensors { tensors.append(.float32("optimizer.v." + v.name, shape: v.shape, Array(vv[v.range]))) }
        }
        tensors.append(.int64("optimizer.step", shape: [1], [Int64(optimizerStep)]))
        tensors.append(.uint64("rng.state", shape: [rngState.count], rngState))
        var meta = metadata
        meta["format"] = "finegrain-trainer"
        meta["format_version"] = String(FineGrainTrainer.checkpointFormatVersion)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        meta["config"] = String(decoding: try enc.encode(config), as: UTF8.self)
        if let h = adamHyper { meta["adamw"] = String(decoding: try enc.encode(h), as: UTF8.self) }
        try SafeTensors.write(tensors, metadata: meta, to: url)
    }

    public static func load(from url: URL) throws -> TrainerCheckpoint {
        let (tensors, meta) = try SafeTensors.read(from: url)
        func bad(_ f: String, _ r: String) -> FineGrainError { .invalidField(field: f, reason: r) }
        guard meta["format"] == "finegrain-trainer" else { throw bad("checkpoint metadata 'format'", "expected 'finegrain-trainer', found \(meta["format"] ?? "none")") }
        guard let vs = meta["format_version"], Int(vs) == FineGrainTrainer.checkpointFormatVersion else {
            throw bad("checkpoint metadata 'format_version'", "expected \(FineGrainTrainer.checkpointFormatVersion), found \(meta["format_version"] ?? "none")")
        }
        guard let cs = meta["config"], let config = try? JSONDecoder().decode(GPTConfig.self, from: Data(cs.utf8)) else {
            throw bad("checkpoint metadata 'config'", "missing or not a GPTConfig JSON object")
        }
        try config.validate()
        var byName: [String: SafeTensor] = [:]
        for t in tensors { byName[t.name] = t }
        let layout = ParameterLayout(config: config)
        func gather(_ prefix: String, required: Bool) throws -> [Float]? {
            if !required && byName[prefix + layout.tensors[0].name] == nil { return nil }
            var out = [Float](repeating: 0, count: layout.count)
            for v in layout.tensors {
                let name = prefix + v.name
                guard let t = byName[name] else { throw bad("checkpoint tensor '\(name)'", "missing") }
                if t.shape != v.shape { throw bad("checkpoint tensor '\(name)'", "shape \(t.shape) does not match the config's \(v.shape)") }
                let values = try t.floats()
                out.replaceSubrange(v.range, with: values)
            }
            return out
        }
        let model = try GPT(config: config, parameters: gather("model.", required: true)!)
        var ck = TrainerCheckpoint(model: model)
        ck.optimizerM = try gather("optimizer.m.", required: false)
        ck.optimizerV = try gather("optimizer.v.", required: ck.optimizerM != nil)
        if let s = byName["optimizer.step"] {
            let v = try s.int64s()
            guard v.count == 1, v[0] >= 0 else { throw bad("checkpoint tensor 'optimizer.step'", "expected one non-negative value") }
            ck.optimizerStep = Int(v[0])
        }
        if let r = byName["rng.state"] { ck.rngState = try r.uint64s() }
        if let h = meta["adamw"] {
            guard let hyper = try? JSONDecoder().decode(AdamHyper.self, from: Data(h.utf8)) else {
                throw bad("checkpoint metadata 'adamw'", "not an AdamW hyper-parameter object")
            }
            ck.adamHyper = hyper
        }
        ck.metadata = meta.filter { !reservedMetadataKeys.contains($0.key) }
        return ck
    }

    /// A model holding the saved parameters.
    public func makeModel() throws -> GPT { try GPT(config: config, parameters: parameters) }

    /// An AdamW with the saved hyper-parameters, moments and step (nil when none was saved).
    public func makeOptimizer() throws -> AdamW? {
        guard let m = optimizerM, let v = optimizerV, let h = adamHyper else { return nil }
        let opt = try AdamW(layout: ParameterLayout(config: config), beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weightDecay)
        opt.m = m
        opt.v = v
        opt.step = optimizerStep
        return opt
    }
}
