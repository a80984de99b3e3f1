"""Loss weighting over a global batch: `train.loss_weighting: sample | token`.

`token`: every assistant token of the global batch weighs the same (TRL / transformers default: the summed token
loss divided by the number of loss tokens across all micro-batches and devices).
`sample`: each sample's mean token loss, averaged over the samples of the global batch, so a 300-token solution
weighs as much as a 12,000-token one. This is what LIMO's run computed: LLaMA-Factory with transformers <= 4.48.2
(GAIR-NLP/LIMO train/requirements.txt@2284c6a, lines 1-2) takes the model's own loss, a mean over the tokens of one
device's micro-batch (transformers 4.45.2 trainer.py `compute_loss`, Qwen2ForCausalLM `CrossEntropyLoss()`), and
the released config trains one sample per device without accumulation (train/examples/train_limo.yaml@2284c6a,
lines 26-27: per_device_train_batch_size 1, gradient_accumulation_steps 1); DDP then averages the per-sample means.
`sample` gives that result for any micro-batch, accumulation and device count.

Samples are told apart by rows (padded batches) or by `position_ids` restarting at 0 (padding-free and packed
batches: one flattened row holds several samples). The loss of a micro-batch is the sum of its samples' mean losses
divided by the number of samples in the whole global batch (all accumulation steps, all devices), times the device
count because DDP averages gradients over devices; summed over micro-batches and averaged over devices this is the
mean of the per-sample means.

    from limo.train.loss import sequence_ids, per_sequence_mean_nll
"""

import torch
from trl import SFTTrainer

IGNORE = -100


def sequence_ids(shape: tuple[int, int], position_ids: torch.Tensor | None) -> torch.Tensor:
    """An id per token, unique per sample in the batch: the row index when rows are samples, else (row, restart
    count of position_ids) so each `position_ids == 0` starts a new sample inside a flattened row."""
    rows, length = shape
    if position_ids is None:
        return torch.arange(rows).unsqueeze(1).expand(rows, length).clone()
    starts = (position_ids == 0).long()
    segment = torch.cumsum(starts, dim=1)  # 1, 1, 1, 2, 2, ... within each row
    return torch.arange(rows, device=position_ids.device).unsqueeze(1) * (length + 1) + segment


def per_sequence_mean_nll(
    token_nll: torch.Tensor, label_mask: torch.Tensor, position_ids: torch.Tensor | None
) -> torch.Tensor:
    """Mean negative log-likelihood of each sample that has loss tokens.

    token_nll, label_mask: (rows, length - 1), aligned with the SHIFTED labels: index t scores label t + 1 (as the
    fused LM head of TRL returns them). position_ids: (rows, length) or None (each row is one sample). A label at
    t + 1 belongs to the sample that owns token t + 1, so sample ids are read at positions 1..length-1."""
    rows, shifted = token_nll.shape
    ids = sequence_ids((rows, shifted + 1), position_ids)[:, 1:].reshape(-1).to(token_nll.device)
    mask = label_mask.reshape(-1)
    nll = (token_nll * label_mask).reshape(-1)
    uniq, inverse = torch.unique(ids, return_inverse=True)
    sums = torch.zeros(len(uniq), dtype=nll.dtype, device=nll.device).index_add(0, inverse, nll)
    counts = torch.zeros(len(uniq), dtype=nll.dtype, device=nll.device).index_add(0, inverse, mask.to(nll.dtype))
    keep = counts > 0
    return sums[keep] / counts[keep]


def count_sequences(labels: torch.Tensor, position_ids: torch.Tensor | None) -> int:
    """Samples with at least one loss token in a collated micro-batch (the unit of `sample` weighting)."""
    shifted = labels[:, 1:] != IGNORE
    ids = sequence_ids(tuple(labels.shape), position_ids)[:, 1:].to(labels.device)
    return int(torch.unique(ids[shifted]).numel())


class WeightedSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer with `loss_weighting: sample` (token weighting is TRL's own path, unchanged)."""

    def __init__(self, *args, loss_weighting: str = "token", **kwargs):
        if loss_weighting not in ("sample", "token"):
            raise ValueError(f"loss_weighting must be sample or token, not {loss_weighting!r}")
        self.loss_weighting = loss_weighting
        super().__init__(*args, **kwargs)
        if loss_weighting == "sample":
            # compute_loss below divides by the samples of the whole accumulated batch itself, so the Trainer must
            # not divide by the accumulation steps again (transformers trainer.py `training_step`)
            self.model_accepts_loss_kwargs = True

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        if self.loss_weighting == "token":
            return super()._get_num_items_in_batch(batch_samples, device)
        local = sum(count_sequences(b["labels"], b.get("position_ids")) for b in batch_samples)
        total = torch.tensor(local, device=device)
        if self.args.world_size > 1:
            total = self.accelerator.gather(total).sum()
        return total

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.loss_weighting == "token" or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs["use_cache"] = False
        outputs = model(**inputs, fused_lm_head=True)
        means = per_sequence_mean_nll(-outputs.log_probs, outputs.label_mask, inputs.get("position_ids"))
        samples = means.numel() if num_items_in_batch is None else num_items_in_batch
        loss = means.sum() / torch.as_tensor(samples, device=means.device).clamp(min=1)
        if num_items_in_batch is not None:  # counted over every device; DDP averages the gradients over them
            loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss


def sample_and_token_loss(
    token_nll: torch.Tensor, label_mask: torch.Tensor, position_ids: torch.Tensor | None
) -> tuple[float, float]:
    """(sample-weighted, token-weighted) loss of one batch, for reports and tests."""
    means = per_sequence_mean_nll(token_nll, label_mask, position_ids)
    token = float((token_nll * label_mask).sum() / label_mask.sum().clamp(min=1))
    return float(means.mean()), token
