#!/usr/bin/env bash
# Record the benchmark suite on this machine into benchmarks/<machine>/ (see README.md).
# Run it alone on the machine: anything else running at the same time slows what is timed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg
if [ -z "${REPRTUT_COMMIT:-}" ] && git rev-parse HEAD >/dev/null 2>&1; then
  REPRTUT_COMMIT=$(git rev-parse HEAD); export REPRTUT_COMMIT
fi
machine=$(python -c "from reprtut.bench.common import slug; from reprtut.device import default_device; print(slug(default_device()))")
dir=${1:-benchmarks/$machine}
mkdir -p "$dir"
echo "recording into $dir"
bench() { python -m reprtut.bench "$@"; }
if python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  # The issue's sizes: ResNet-18, batch 512; PGD-20 on 512 images; MNIST to 99 % (full profile).
  bench train --out "$dir/train.json"
  bench train --compile --out "$dir/train-compiled.json"
  bench attack --out "$dir/attack.json"
  REPRTUT_PROFILE=${REPRTUT_PROFILE:-full} bench mnist --out "$dir/mnist.json"
else
  # CPU sizes: a few steps of ResNet-18 at batch 32 and of the quick profile's CNN at batch
  # 128; PGD-20 on 128 images; the quick MNIST recipe to 98 % within 4 epochs.
  bench train --arch resnet18 --batch 32 --steps 3 --out "$dir/train.json"
  bench train --arch small_cnn --batch 128 --steps 5 --out "$dir/train-small_cnn.json"
  bench attack --batch 128 --repeats 5 --out "$dir/attack.json"
  REPRTUT_PROFILE=quick bench mnist --target 0.98 --max-epochs 4 --out "$dir/mnist.json"
fi
echo "recorded: $(ls "$dir")"
