#!/usr/bin/env bash
# Reproduces the experiment set of the paper's Figure 3 (Mogren 2016): C-RNN-GAN (with the
# preset's G loss: feature matching in paper, the score function in small), the baseline
# and C-RNN-GAN-3, each with pretraining, on
# crnn_gan_midi/default; then evaluate.py over the three runs and real music.
#
#   scripts/reproduce.sh [small|paper|tiny]      (default: small)
#
# small: meant for a 2-core CPU; paper: the paper's sizes, meant for a GPU; tiny: a smoke
# test of the script (minutes, meaningless numbers).
# Runs go to runs/reproduce_<preset>/{gan,baseline,gan3} (running the script again resumes
# them); the evaluation to runs/reproduce_<preset>/evaluation and the figure to
# docs/figure3_<preset>.png. Environment: PYTHON (default .venv/bin/python), DATA_DIR
# (default ./data), SEED (default 0), RUNS_DIR (default runs), FIGURE (default
# docs/figure3_<preset>.png).
set -euo pipefail

PRESET="${1:-small}"
case "$PRESET" in
  small|paper|tiny) ;;
  *) echo "usage: $0 [small|paper|tiny]" >&2; exit 64 ;;
esac

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
DATA_DIR="${DATA_DIR:-$PWD/data}"
SEED="${SEED:-0}"
RUNS="${RUNS_DIR:-runs}/reproduce_${PRESET}"
FIGURE="${FIGURE:-docs/figure3_${PRESET}.png}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

# The corpus (a no-op when it is prepared already).
"$PYTHON" -m tfds_midi --config=default --data_dir="$DATA_DIR" --show_tones=0

train() {  # train NAME FLAGS...
  local name="$1"
  shift
  echo "=== training $name ($PRESET) -> $RUNS/$name"
  "$PYTHON" train.py --preset="$PRESET" --dataset=crnn_gan_midi/default \
    --data_dir="$DATA_DIR" --seed="$SEED" --model_dir="$RUNS/$name" "$@"
}

# Each run pretrains G first: pretrain_epochs of the preset (small and paper: 6).
train gan --model=gan --tones_per_step=1
train baseline --model=baseline --tones_per_step=1
train gan3 --model=gan --tones_per_step=3

echo "=== evaluating"
"$PYTHON" evaluate.py \
  --model_dir="$RUNS/gan,$RUNS/baseline,$RUNS/gan3" \
  --real=crnn_gan_midi/default:train --data_dir="$DATA_DIR" \
  --output_dir="$RUNS/evaluation" --figure="$FIGURE" \
  --pianoroll --seed="$SEED"
echo "=== done: $FIGURE, $RUNS/evaluation/evaluation.{json,csv}"
