# Sourced by the GPU scripts: output folder, unbuffered Python, and the wheels
# of what the GPU image lacks (lightly, pydantic, kornia, hydra) from .whl/
# when present (see bench/gpu/README.md).
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
