#!/usr/bin/env bash
# Every CUDA path of imagion, once, with the training throughput of both families.
# For a machine with NVIDIA GPUs (the library's `device` tool); never in CI. Under 8 minutes on
# one H200: GPU-resident uint8 data, bf16 autocast, channels_last, --compile, torchrun with NCCL
# on every GPU present, --resume, eval and rank on cuda, then images/s of seed-cnn and
# effnet-lite0 (fine-tuned end to end). Usage: bash bench/gpu_check.sh   (PY=… to pick a Python)
# A dry run of the script itself on a machine without GPU: DEVICE=cpu QUICK=1 bash bench/gpu_check.sh
set -euo pipefail
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make .venv/.imagion-installed >/dev/null
PY=${PY:-.venv/bin/python}
WORK=$(mktemp -d)
export IMAGION_CACHE="$WORK/cache"
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }
im() { "$PY" -m imagion "$@"; }

step "GPUs"
if [ "$DEVICE" = cuda ]; then nvidia-smi -L; NGPU=$(nvidia-smi -L | wc -l); else NGPU=2; fi
if [ "$QUICK" = 1 ]; then E=1; STEPS=2; BS=8; else E=3; STEPS=100; BS=512; fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'bf16', torch.cuda.is_bf16_supported())"

step "synthetic catalog: 8 accounts x 32 posts, brightness follows likes"
"$PY" - "$WORK/ig" <<'PYEOF'
import json, lzma, sys
from pathlib import Path
import numpy as np
from PIL import Image
root = Path(sys.argv[1])
rng = np.random.default_rng(0)
for a in range(8):
    folder = root / f"acct{a}"
    folder.mkdir(parents=True)
    for i, likes in enumerate(rng.permutation(32) * 10 + 5):
        stem = f"2020-01-{a + 1:02d}_{i:02d}"
        img = np.clip(40 + likes * 0.6 + rng.normal(0, 20, (256, 256, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{stem}.jpg", quality=90)
        node = {"shortcode": f"a{a}p{i}", "taken_at_timestamp": 1_600_000_000 + i * 3600,
                "edge_media_preview_like": {"count": int(likes)}, "owner": {"username": f"acct{a}"}}
        with lzma.open(folder / f"{stem}.json.xz", "wt") as f:
            json.dump({"node": node, "instaloader": {"node_type": "Post"}}, f)
PYEOF
im import "$WORK/ig" --catalog "$WORK/c.db" >/dev/null
im score --catalog "$WORK/c.db" >/dev/null
C=(--catalog "$WORK/c.db" --device "$DEVICE")

step "seed-cnn on $DEVICE: GPU-resident data, bf16 autocast, channels_last (on cuda)"
im train "${C[@]}" --arch seed-cnn --epochs "$E" --batch-size 64 --out "$WORK/seed" --json
step "resume to epoch $((E + 2))"
im train "${C[@]}" --arch seed-cnn --epochs $((E + 2)) --batch-size 64 --out "$WORK/seed" --resume --json
if [ "$DEVICE" = cuda ]; then
    step "torch.compile"
    im train "${C[@]}" --arch seed-cnn --epochs 2 --batch-size 64 --compile --out "$WORK/compiled" --json
fi
step "torchrun ($DEVICE: NCCL on GPUs, gloo on the CPU), $NGPU process(es)"
"$PY" -m torch.distributed.run --standalone --nproc-per-node "$NGPU" -m imagion train "${C[@]}" \
    --arch seed-cnn --epochs "$E" --batch-size 32 --out "$WORK/ddp" --json
step "effnet-lite0 on $DEVICE: frozen features, then fine-tuned"
im train "${C[@]}" --arch effnet-lite0 --epochs 5 --out "$WORK/effnet" --json
im train "${C[@]}" --arch effnet-lite0 --finetune --epochs "$E" --batch-size 32 --out "$WORK/finetune" --json
step "eval and rank on $DEVICE"
im eval "${C[@]}" --model "$WORK/seed/best.pt" --split val --json | "$PY" -c "import json,sys; d=json.load(sys.stdin); print('eval', d['pairs'], 'pairs, accuracy', round(d['accuracy'], 3))"
im eval "${C[@]}" --model "$WORK/effnet/best.pt" --json >/dev/null
im rank data/samples --model "$WORK/finetune/best.pt" --device "$DEVICE" --json | "$PY" -c "import json,sys; print('rank', len(json.load(sys.stdin)), 'images')"
im rank data/samples --device "$DEVICE" --json >/dev/null

step "training throughput (images/s)"
"$PY" bench/train_throughput.py --device "$DEVICE" --arch seed-cnn --batch-size "$BS" --steps "$STEPS"
if [ "$DEVICE" = cuda ]; then
    "$PY" bench/train_throughput.py --device cuda --arch seed-cnn --batch-size 512 --steps 100 --compile
fi
"$PY" bench/train_throughput.py --device "$DEVICE" --arch effnet-lite0 --batch-size $((BS / 2)) --steps $((STEPS / 2 + 1))
step "done"
