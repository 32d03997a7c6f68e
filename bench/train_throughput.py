"""seed-cnn training throughput (forward + backward + AdamW step), the way `imagion train` runs it.

The uint8 dataset is resident on the device, batches are flipped there, normalized, channels_last,
bf16 autocast on CUDA. Prints images/s and the projected time of the seed's run: 120 epochs of
12,000 images (30 hours on a P100 at batch size 2 in the original).

Usage: python bench/train_throughput.py [--device auto|cpu|cuda] [--batch-size 256] [--steps 30] [--compile]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from imagion.models.registry import build_model
from imagion.settings import pick_device

SEED_RUN_IMAGES = 120 * 12_000
SEED_RUN_HOURS = 30.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument(
        "--arch", default="seed-cnn", help="seed-cnn, or effnet-lite0 (trained end to end)"
    )
    args = ap.parse_args()
    dev = pick_device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    config = {"finetune": True} if args.arch.startswith("effnet") else {}
    model = build_model(args.arch, **config).to(dev).to(memory_format=torch.channels_last)
    pre = model.preprocess
    size = pre.size
    step_model = torch.compile(model) if args.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=dev.type == "cuda")
    n = max(args.batch_size * 8, 4096)
    data = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, device=dev)
    target = torch.rand(n, device=dev) * 10
    amp = dev.type == "cuda"

    def step() -> None:
        idx = torch.randint(0, n, (args.batch_size,), device=dev)
        xb = data[idx]
        flip = torch.rand(len(xb), device=dev) < 0.5
        xb = torch.where(flip[:, None, None, None], xb.flip(2), xb)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            pred = step_model(pre.normalize(xb)).float()
        loss = F.mse_loss(pred, target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):  # warm-up (cudnn autotune, compile)
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    rate = args.steps * args.batch_size / dt
    name = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(f"device {name}, batch {args.batch_size}, compile {args.compile}")
    print(f"{args.arch} training: {rate:,.0f} images/s")
    if args.arch != "seed-cnn":
        return
    secs = SEED_RUN_IMAGES / rate
    print(
        f"the seed's run (120 epochs × 12,000 images): {secs:,.0f} s = {secs / 3600:.2f} h "
        f"(seed: {SEED_RUN_HOURS:.0f} h on a P100 → {SEED_RUN_HOURS * 3600 / secs:,.0f}× faster)"
    )


if __name__ == "__main__":
    main()
