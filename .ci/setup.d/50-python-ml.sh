#!/usr/bin/env bash
# Python packages for ember-ml's reference tests: scikit-learn (metrics checked against sklearn),
# numpy, and safetensors (model files read back from Python). Idempotent: installs only what is
# missing, so a second run is a no-op.
set -euo pipefail

PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip >/dev/null
    else
        echo "50-python-ml: python3 not found and apt-get unavailable" >&2
        exit 1
    fi
fi

if "$PY" -c "import sklearn, numpy, safetensors" >/dev/null 2>&1; then
    echo "50-python-ml: scikit-learn, numpy and safetensors already installed"
    exit 0
fi

# Debian's system Python refuses pip installs without --break-system-packages (PEP 668).
PIP_FLAGS=(--quiet --disable-pip-version-check --no-input)
if "$PY" -m pip install --help 2>/dev/null | grep -q -- --break-system-packages; then
    if "$PY" -c "import sys; sys.exit(0 if sys.prefix == sys.base_prefix and sys.prefix.startswith('/usr') else 1)"; then
        PIP_FLAGS+=(--break-system-packages)
    fi
fi
"$PY" -m pip install "${PIP_FLAGS[@]}" "scikit-learn>=1.3" "numpy>=1.24" "safetensors>=0.4"
"$PY" -c "import sklearn, numpy, safetensors; print('50-python-ml: sklearn', sklearn.__version__, 'numpy', numpy.__version__)"
