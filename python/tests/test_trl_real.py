"""Optional: FineGrainGRPOTrainer inside a real trl.GRPOTrainer step (skipped unless trl and datasets are
installed; CI does not install them). A tiny GPT-2 and a word-level tokenizer are built in memory."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("datasets")


def test_one_grpo_step_uses_token_advantages(client, tmp_path):
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    from trl import GRPOConfig, GRPOTrainer

    from finegrain.trl import FineGrainGRPOMixin, FineGrainGRPOTrainer

    assert issubclass(FineGrainGRPOTrainer, GRPOTrainer)
    words = ["[PAD]", "[UNK]", "[EOS]"] + [str(i) for i in range(10)] + ["+", "="]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", eos_token="[EOS]", unk_token="[UNK]")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(words), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                                       bos_token_id=2, eos_token_id=2, pad_token_id=0))
    dataset = Dataset.from_dict({"prompt": ["1 + 2 =", "3 + 4 =", "5 + 1 =", "2 + 2 ="]})

    def reward(completions, **kwargs):
        return [float(sum(map(ord, c)) % 5) for c in completions]

    trl_advantages, ours = [], []

    class Recorder(GRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            trl_advantages.append((out["advantages"].clone(), out["completion_mask"].clone()))
            return out

    class Trainer(FineGrainGRPOMixin, Recorder):
        finegrain_client = client

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            ours.append(out["advantages"].clone())
            return out

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=6, max_steps=2, report_to="none", use_cpu=True, save_strategy="no",
                      bf16=False, fp16=False, logging_steps=1)
    Trainer(model=model, reward_funcs=reward, args=args, train_dataset=dataset, processing_class=tokenizer).train()
    assert ours and len(ours) == len(trl_advantages)
    for mine, (theirs, mask) in zip(ours, trl_advantages):
        assert mine.shape == mask.shape  # (B, T) instead of TRL's (B,)
        torch.testing.assert_close(mine, theirs[:, None] * mask.float(), atol=1e-5, rtol=1e-5)
