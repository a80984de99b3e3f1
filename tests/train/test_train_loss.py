"""`loss_weighting: sample | token` on a 2-row batch of very different lengths, against hand computations: the pure
per-sequence function (padded rows and one padding-free row split by position_ids), then the real trainer's loss on a
tiny model compared with per-sample cross-entropies computed from the model's own logits."""

import pytest
import torch

from limo.train.loss import count_sequences, per_sequence_mean_nll, sample_and_token_loss

# sample A: 2 loss tokens with NLL 1 and 3 (mean 2); sample B: 8 loss tokens with NLL 0.5 (mean 0.5)
# sample weighting: (2 + 0.5) / 2 = 1.25; token weighting: (1 + 3 + 8 * 0.5) / 10 = 0.8
SAMPLE_BY_HAND, TOKEN_BY_HAND = 1.25, 0.8


def test_padded_rows_by_hand():
    nll = torch.zeros(2, 9)
    mask = torch.zeros(2, 9)
    nll[0, 2:4] = torch.tensor([1.0, 3.0])
    mask[0, 2:4] = 1
    nll[1, 1:9] = 0.5
    mask[1, 1:9] = 1
    assert per_sequence_mean_nll(nll, mask, None).tolist() == [2.0, 0.5]
    sample, token = sample_and_token_loss(nll, mask, None)
    assert sample == pytest.approx(SAMPLE_BY_HAND) and token == pytest.approx(TOKEN_BY_HAND)
    assert sample != pytest.approx(token)


def test_padding_free_row_split_at_position_ids():
    """One flattened row: sample A (5 tokens) then sample B (10 tokens). The shifted index t scores token t + 1, so
    the label that starts B (t + 1 = 5) belongs to B, and the prompt tokens carry no loss."""
    position_ids = torch.cat([torch.arange(5), torch.arange(10)])[None]
    nll = torch.zeros(1, 14)
    mask = torch.zeros(1, 14)
    nll[0, 2:4] = torch.tensor([1.0, 3.0])  # labels 3, 4: inside A
    mask[0, 2:4] = 1
    nll[0, 6:14] = 0.5  # labels 7..14: inside B
    mask[0, 6:14] = 1
    means = per_sequence_mean_nll(nll, mask, position_ids)
    assert means.tolist() == [2.0, 0.5]
    sample, token = sample_and_token_loss(nll, mask, position_ids)
    assert sample == pytest.approx(SAMPLE_BY_HAND) and token == pytest.approx(TOKEN_BY_HAND)
    # without the boundary the two samples would merge into one mean, the token-weighted 0.8
    assert float(per_sequence_mean_nll(nll, mask, None).mean()) == pytest.approx(TOKEN_BY_HAND)


def test_count_sequences_padded_and_padding_free():
    labels = torch.full((1, 15), -100)
    labels[0, 3:5] = 7
    labels[0, 7:15] = 9
    position_ids = torch.cat([torch.arange(5), torch.arange(10)])[None]
    assert count_sequences(labels, position_ids) == 2
    assert count_sequences(labels, None) == 1
    two_rows = torch.full((2, 6), -100)
    two_rows[0, 2] = 1
    two_rows[1, 3:6] = 1
    assert count_sequences(two_rows, None) == 2


def _trainer(model_dir, weighting: str, batching: str, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from limo.train.loss import WeightedSFTTrainer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa")
    short = {"input_ids": list(range(10, 16)), "labels": [-100] * 3 + list(range(13, 16))}
    long = {"input_ids": list(range(20, 60)), "labels": [-100] * 4 + list(range(24, 60))}
    args = SFTConfig(
        output_dir=str(tmp_path / weighting),
        per_device_train_batch_size=2,
        padding_free=batching == "padding_free",
        max_length=None,
        report_to="none",
        use_cpu=True,
    )
    data = Dataset.from_list([short, long])
    trainer = WeightedSFTTrainer(
        model=model, args=args, train_dataset=data, processing_class=tok, loss_weighting=weighting
    )
    return trainer, [short, long]


def _by_hand(model, rows) -> tuple[float, float]:
    """Per-sample cross-entropy from each sample's own forward pass (no batching at all)."""
    means, sums, counts = [], 0.0, 0
    with torch.no_grad():
        for r in rows:
            logits = model(input_ids=torch.tensor([r["input_ids"]])).logits[0, :-1]
            labels = torch.tensor(r["labels"][1:])
            keep = labels != -100
            nll = torch.nn.functional.cross_entropy(logits[keep], labels[keep], reduction="none")
            means.append(float(nll.mean()))
            sums += float(nll.sum())
            counts += int(keep.sum())
    return sum(means) / len(means), sums / counts


@pytest.mark.parametrize("batching", ["padding_free", "padded"])
def test_trainer_loss_matches_hand_computation(tiny_model_dir, tmp_path, batching):
    losses = {}
    for weighting in ("sample", "token"):
        trainer, rows = _trainer(tiny_model_dir, weighting, batching, tmp_path)
        batch = trainer.data_collator(rows)
        if batching == "padding_free":
            assert batch["input_ids"].shape[0] == 1 and "position_ids" in batch
        trainer.model.train()
        with torch.no_grad():
            losses[weighting] = float(trainer.compute_loss(trainer.model, dict(batch)))
    sample, token = _by_hand(trainer.model.eval(), rows)
    assert losses["sample"] == pytest.approx(sample, rel=1e-4)
    assert losses["token"] == pytest.approx(token, rel=1e-4)
    assert abs(losses["sample"] - losses["token"]) > 1e-3  # 3 vs 36 loss tokens: the weightings really differ


def test_accumulation_splits_the_sample_mean(tiny_model_dir, tmp_path):
    """One sample per micro-batch, accumulation 2: the Trainer counts 2 samples for the step, each micro-batch's loss
    is its sample mean / 2, and their sum is the mean of the two per-sample means (LIMO's weighting)."""
    trainer, rows = _trainer(tiny_model_dir, "sample", "padding_free", tmp_path)
    batches = [trainer.data_collator([r]) for r in rows]
    total = trainer._get_num_items_in_batch(batches, torch.device("cpu"))
    assert int(total) == 2
    assert trainer.model_accepts_loss_kwargs  # so training_step does not divide by the accumulation steps again
    trainer.model.train()
    with torch.no_grad():
        parts = [float(trainer.compute_loss(trainer.model, dict(b), num_items_in_batch=total)) for b in batches]
    sample, _ = _by_hand(trainer.model.eval(), rows)
    assert sum(parts) == pytest.approx(sample, rel=1e-4)
