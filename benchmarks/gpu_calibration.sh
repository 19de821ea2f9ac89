#!/usr/bin/env bash
# The GPU checks of issue 5, as one script for a machine with an NVIDIA GPU and torch + triton
# installed (the device tool's H200): the Triton kernel tests natively, then the calibration sweep
# (infercast calibrate --device cuda) and its held-out error. Everything lands under $OUT (default
# ./gpu-out; never infercast's own package folders, which calibrate refuses): kernel_tests.txt,
# calibrate.txt, <hw>/kernels.csv + kernels.raw.csv and <hw>.yaml. To commit them as reference data,
# from a source checkout: `infercast validate publish $OUT/<hw>/kernels.csv` (-> validate/data/<hw>/)
# and `cp $OUT/<hw>.yaml hwspecs/calibration/`.
#   OUT=/tmp/x QUICK=1 bash benchmarks/gpu_calibration.sh
set -euo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python -m pytest -q tests/kernels 2>&1 | tee "$OUT/kernel_tests.txt"
HW=$(python -c "import torch; from validate.calibrate_gpu import hw_id; print(hw_id(torch.cuda.get_device_name(0)) or 'gpu')")
INFERCAST_HOME="$OUT/home" python -c "import sys; from simulator.cli import run; sys.exit(run(sys.argv[1:]))" calibrate --device cuda ${QUICK:+--quick} --hw "$HW" \
    --out "$OUT/$HW" 2>&1 | tee "$OUT/calibrate.txt"
cp "$OUT/home/calibration/$HW.yaml" "$OUT/$HW.yaml"
