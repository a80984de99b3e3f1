"""Run as a subprocess by test_train_launch.py: does `args_then_model` load a ZeRO-3 model partitioned?

One gloo process (world size 1). First the control: `load_model` BEFORE any training arguments exist loads full
weights. Then the real path, `args_then_model` with recipes/accelerate/ds_zero3.json: the training arguments install
the HF DeepSpeed config, so `from_pretrained` runs under deepspeed.zero.Init and every parameter is a ZeRO-3 shard
(`ds_id` set, local numel 0 of `ds_numel`). Prints one JSON line.

    python tests/train/zero3_probe.py MODEL_DIR OUT_DIR PORT
"""

import json
import os
import sys
from pathlib import Path


def main() -> None:
    model_dir, out_dir, port = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=0, world_size=1)
    from limo.train.memory import plan_batch
    from limo.train.sft import args_then_model, build_train_config, load_model

    cfg = build_train_config(
        dict(
            model=model_dir,
            deepspeed="recipes/accelerate/ds_zero3.json",
            strategy="zero3",
            global_batch_size=1,
            per_device_batch_size=1,
            gradient_checkpointing=False,
        )
    )
    control = next(load_model(cfg, model_dir, "fp32", "sdpa").parameters())
    args, model, info = args_then_model(cfg, out_dir, plan_batch(1, 1, 1), "fp32", model_dir)
    params = list(model.parameters())
    result = {
        **info,
        "control_partitioned": hasattr(control, "ds_id"),
        "all_partitioned": all(hasattr(p, "ds_id") for p in params),
        "local_numel": sum(p.numel() for p in params),
        "full_numel": sum(p.ds_numel for p in params),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
