/// A frozen copy of a policy for the KL penalty (`KL(pi_theta || pi_ref)` with `pi_ref` the policy at the
/// start of RL, as in InstructGPT / GRPO): a value copy of the parameters taken at `init`, never updated,
/// with its own activation buffers so it can run while the live policy holds activations for backward.
public final class FrozenReference: @unchecked Sendable {
    let model: GPT
    public var config: GPTConfig { model.config }
    /// The frozen parameters (a value copy).
    public var parameters: [Float] { model.parameters }

    public init(copying policy: GPT) { model = policy.copy() }

    /// Per-position reference log-probabilities `log pi_ref(targets[t] | tokens[..t])` of `tokens [B*T]`.
    public func logprobs(of tokens: [Int32], targets: [Int32], batch: Int, length: Int, temperature: Float = 1) throws -> [Float] {
        try model.logprobs(tokens: tokens, targets: targets, batch: batch, length: length, temperature: temperature).logprobs
    }
}
