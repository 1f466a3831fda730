#!/usr/bin/env bash
# The GPU check (scripts/gpu_check.py) on the `device` tool's machine, whose image has torch, torchvision,
# numpy, pandas, pillow, pyyaml, safetensors, huggingface_hub and pytest but NOT gradio / gradio_client, and
# no network. Two steps:
#
#   1. here, once (needs PyPI):  scripts/gpu_check.sh prepare
#      downloads the wheels the device image lacks (gradio 6.31 and its dependencies, for its CPython 3.12
#      on x86-64) into .whl/ in the repository root (ignored by git through .gitignore; about 40 MB,
#      under the tool's 64 MiB for the tree that travels);
#   2. with the device tool: run(command="bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=540)
#      installs what is missing from .whl/ (pip --no-index: nothing is fetched), runs the check with its
#      output to $OUT (gpu_check.json, gpu_check.log) and exits with the check's status.
#
# Extra arguments go to gpu_check.py (e.g. --quick for a first try, --budget-s 200).
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=.whl
PY=${PYTHON:-python3}

if [[ "${1:-}" == "prepare" ]]; then
    shift
    mkdir -p "$WHEELS"
    grep -qx "/$WHEELS/" .git/info/exclude 2>/dev/null || echo "/$WHEELS/" >> .git/info/exclude
    platforms=()
    for n in 2_17 2_24 2_27 2_28 2_31 2_34 2_35; do platforms+=(--platform "manylinux_${n}_x86_64"); done
    platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
    # gradio's whole closure for the device's Python, then drop what its image already has (big ones)
    gradio=$(grep -E '^gradio==' requirements.txt)
    "$PY" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
        "${platforms[@]}" -d "$WHEELS" "$gradio" "$@" || exit 1
    for present in numpy pandas pillow hf_xet huggingface_hub httpx2 httpcore2 truststore pyyaml PyYAML tzdata \
                   python_dateutil six fsspec packaging filelock tqdm pygments Pygments; do
        rm -f "$WHEELS/$present"-[0-9]*.whl
    done
    ls -l "$WHEELS"
    du -sh "$WHEELS"
    echo "carry: [\"$WHEELS\"]; the tree that travels: $(git ls-files -co --exclude-standard -z | du -ch --files0-from=- | tail -1 | cut -f1) + $(du -sh "$WHEELS" | cut -f1) of wheels (limit 64 MiB)"
    exit 0
fi

OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
if ! "$PY" -c "import gradio, gradio_client" 2>/dev/null; then
    if ! ls "$WHEELS"/gradio-*.whl >/dev/null 2>&1; then
        echo "gpu_check.sh: gradio is not installed and $WHEELS/ holds no wheels: run 'scripts/gpu_check.sh prepare' here and carry [\"$WHEELS\"]" >&2
        exit 2
    fi
    # into the image's own environment: pip keeps what is installed and takes only what is missing from .whl
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" --no-cache-dir --no-compile \
        "$(grep -E '^gradio==' requirements.txt)" >"$OUT/pip.log" 2>&1
    if ! "$PY" -c "import gradio, gradio_client" 2>>"$OUT/pip.log"; then
        # the way the device README describes: every carried wheel, no resolver, in front of the image's packages
        echo "gpu_check.sh: pip could not resolve against the image (see pip.log); installing every wheel with --no-deps" | tee -a "$OUT/pip.log"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$WHEELS"/*.whl >>"$OUT/pip.log" 2>&1
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    tail -3 "$OUT/pip.log"
fi
"$PY" - <<'EOF' | tee "$OUT/versions.txt"
import importlib.metadata as m, sys
print(f"python {sys.version.split()[0]}", *(f"{p} {m.version(p)}" for p in
      ("torch", "torchvision", "gradio", "gradio_client", "huggingface_hub", "numpy", "pandas", "pillow")), sep="; ")
EOF
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/versions.txt"
"$PY" scripts/gpu_check.py --json "$OUT/gpu_check.json" "$@" 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
