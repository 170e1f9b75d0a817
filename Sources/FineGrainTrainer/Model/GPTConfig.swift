import FineGrain

/// Shape of the tiny GPT policy: a GPT-2-style decoder (Radford et al., "Language Models are Unsupervised
/// Multitask Learners", 2019) built from the Transformer of Vaswani et al. ("Attention Is All You Need",
/// 2017): token + position embeddings, `nLayers` pre-LayerNorm blocks
/// `x = x + Attn(LN1(x)); x = x + MLP(LN2(x))` with `MLP(x) = W2 GELU(W1 x + b1) + b2`, a final LayerNorm
/// and an LM head tied to the token embedding (`logits = LN_f(x) Wte^T`).
public struct GPTConfig: Sendable, Equatable, Codable {
    /// Number of distinct token ids (ids are `0 ..< vocabSize`).
    public var vocabSize: Int
    /// Longest sequence (prompt + continuation) the position embedding covers.
    public var contextLength: Int
    /// Residual-stream width `C`.
    public var dModel: Int
    /// Number of transformer blocks.
    public var nLayers: Int
    /// Number of attention heads; `dModel` must be divisible by it.
    public var nHeads: Int

    public init(vocabSize: Int, contextLength: Int, dModel: Int, nLayers: Int, nHeads: Int) {
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.dModel = dModel
        self.nLayers = nLayers
        self.nHeads = nHeads
    }

    /// Hidden width of the MLP, `4 * dModel` as in GPT-2.
    public var mlpHidden: Int { 4 * dModel }
    /// Per-head width `dModel / nHeads`.
    public var headSize: Int { dModel / nHeads }

    /// The default policy for the synthetic tasks: d = 64, 2 layers, 4 heads, context 96.
    /// With a 32-symbol vocabulary it has 108,288 parameters
    /// (`V*C + T*C + L*(12*C^2 + 13*C) + 2*C`); see `parameterCount`.
    public static func small(vocabSize: Int = 32, contextLength: Int = 96) -> GPTConfig {
        GPTConfig(vocabSize: vocabSize, contextLength: contextLength, dModel: 64, nLayers: 2, nHeads: 4)
    }

    /// The tiny shape used by the finite-difference tests (V=7, T=5, d=8, 2 layers, 2 heads).
    public static let tiny = GPTConfig(vocabSize: 7, contextLength: 5, dModel: 8, nLayers: 2, nHeads: 2)

    /// Total number of scalar parameters: `V*C + T*C + L*(12*C^2 + 13*C) + 2*C`.
    public var parameterCount: Int {
        let c = dModel
        return vocabSize * c + contextLength * c + nLayers * (12 * c * c + 13 * c) + 2 * c
    }

    /// Throws `FineGrainError.invalidParameter` naming the field when the shape is unusable.
    public func validate() throws {
        func bad(_ name: String, _ reason: String) -> FineGrainError {
            .invalidParameter(name: name, method: "GPTConfig", reason: reason)
        }
        if vocabSize < 1 { throw bad("vocabSize", "must be >= 1, got \(vocabSize)") }
        if vocabSize > Int(Int32.max) { throw bad("vocabSize", "must fit in Int32, got \(vocabSize)") }
        if contextLength < 1 { throw bad("contextLength", "must be >= 1, got \(contextLength)") }
        if dModel < 1 { throw bad("dModel", "must be >= 1, got \(dModel)") }
        if nLayers < 1 { throw bad("nLayers", "must be >= 1, got \(nLayers)") }
        if nHeads < 1 { throw bad("nHeads", "must be >= 1, got \(nHeads)") }
        if dModel % nHeads != 0 { throw bad("nHeads", "dModel \(dModel) is not divisible by nHeads \(nHeads)") }
    }
}
