import CBLAS
import FineGrain

/// The embedded trainer (issue 4): a tiny GPT policy RL-fine-tuned in pure Swift on CPU.
public enum FineGrainTrainer {
    /// Version of the checkpoint format written by this module.
    public static let checkpointFormatVersion = 1
}
