/// One named tensor inside a flat parameter buffer: `buffer[offset ..< offset + count]`, row-major `shape`.
public struct TensorView: Sendable, Equatable {
    public let name: String
    public let offset: Int
    public let shape: [Int]
    /// Whether AdamW applies decoupled weight decay to it (matrices only; see `AdamW`).
    public let decays: Bool
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset ..< offset + count }
}

/// Offsets of one transformer block's tensors in the flat buffer. Linear weights are `[out, in]`
/// (PyTorch `nn.Linear` convention): `y = x W^T + b`.
public struct BlockOffsets: Sendable, Equatable {
    public let ln1W: Int, ln1B: Int      // [C], [C]
    public let qkvW: Int, qkvB: Int      // [3C, C], [3C]
    public let projW: Int, projB: Int    // [C, C], [C]
    public let ln2W: Int, ln2B: Int      // [C], [C]
    public let fcW: Int, fcB: Int        // [4C, C], [4C]
    public let fcProjW: Int, fcProjB: Int // [C, 4C], [C]
}

/// All parameters of a `GPTConfig` live in ONE contiguous `[Float]`; this layout names the views into it
/// (name, offset, shape) so the optimiser, the checkpoint writer and the tests treat them uniformly.
/// Gradients use the same layout in a parallel buffer. Names follow GPT-2's: `wte`, `wpe`,
/// `h.{l}.ln_1.weight`, `h.{l}.attn.qkv.weight`, ..., `ln_f.bias`.
public struct ParameterLayout: Sendable, Equatable {
    public let tensors: [TensorView]
    public let count: Int
    public let wte: Int   // [V, C]
    public let wpe: Int   // [T, C]
    public let blocks: [BlockOffsets]
    public let lnfW: Int, lnfB: Int // [C], [C]

    public init(config: GPTConfig) {
        let v = config.vocabSize, t = config.contextLength, c = config.dModel, h = config.mlpHidden
        var views: [TensorView] = []
        var next = 0
        func add(_ name: String, _ shape: [Int], decays: Bool) -> Int {
            let view = TensorView(name: name, offset: next, shape: shape, decays: decays)
            views.append(view)
            next += view.count
            return view.offset
        }
        wte = add("wte", [v, c], decays: false)
        wpe = add("wpe", [t, c], decays: false)
        var blocks: [BlockOffsets] = []
        for l in 0 ..< config.nLayers {
            let p = "h.\(l)."
            blocks.append(BlockOffsets(
                ln1W: add(p + "ln_1.weight", [c], decays: false), ln1B: add(p + "ln_1.bias", [c], decays: false),
                qkvW: add(p + "attn.qkv.weight", [3 * c, c], decays: true), qkvB: add(p + "attn.qkv.bias", [3 * c], decays: false),
                projW: add(p + "attn.proj.weight", [c, c], decays: true), projB: add(p + "attn.proj.bias", [c], decays: false),
                ln2W: add(p + "ln_2.weight", [c], decays: false), ln2B: add(p + "ln_2.bias", [c], decays: false),
                fcW: add(p + "mlp.fc.weight", [h, c], decays: true), fcB: add(p + "mlp.fc.bias", [h], decays: false),
                fcProjW: add(p + "mlp.proj.weight", [c, h], decays: true), fcProjB: add(p + "mlp.proj.bias", [c], decays: false)))
        }
        self.blocks = blocks
        lnfW = add("ln_f.weight", [c], decays: false)
        lnfB = add("ln_f.bias", [c], decays: false)
        tensors = views
        count = next
    }

    /// The view called `name`, or nil.
    public func view(named name: String) -> TensorView? { tensors.first { $0.name == name } }
}
