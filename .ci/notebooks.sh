#!/usr/bin/env bash
# CI for notebooks/: installs Jupyter (Debian packages) and the Deno kernel when
# they are missing, executes every notebook headless with nbconvert (outputs go
# to a temporary folder; the committed notebooks stay output-free), fails on any
# error output, and ends with "notebooks: N passed, M failed".
#
#   .ci/notebooks.sh            # all notebooks/*.ipynb
#   .ci/notebooks.sh notebooks/01_quickstart.ipynb
set -uo pipefail
cd "$(dirname "$0")/.."

DENO=${DENO:-deno}
TIMEOUT=${NOTEBOOK_CELL_TIMEOUT:-1800} # seconds per cell

log() { echo "notebooks.sh: $*" >&2; }

# ---- Jupyter (nbconvert + jupyter_client; the Deno kernel needs no ipykernel) ----------
have_jupyter() {
  command -v jupyter >/dev/null 2>&1 && jupyter nbconvert --version >/dev/null 2>&1
}
if ! have_jupyter; then
  log "installing jupyter-nbconvert and jupyter-client (Debian packages)"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
      log "need root (or sudo) to apt-get install jupyter-nbconvert jupyter-client"
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq >/dev/null 2>&1 || true
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends jupyter-nbconvert jupyter-client \
    >/dev/null 2>&1 || log "apt-get install failed"
fi
if ! have_jupyter; then
  echo "notebooks: 0 passed, 1 failed (jupyter nbconvert is not available)"
  exit 1
fi

# ---- the Deno kernel and the npm packages -------------------------------------------------
if ! jupyter kernelspec list 2>/dev/null | grep -qE '^\s*deno\s'; then
  log "installing the Deno Jupyter kernel"
  "$DENO" jupyter --install >/dev/null 2>&1 || log "deno jupyter --install failed"
fi
"$DENO" install --frozen >/dev/null 2>&1 || "$DENO" install >/dev/null 2>&1 || true

# ---- run ---------------------------------------------------------------------------------
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

if [ "$#" -gt 0 ]; then notebooks=("$@"); else notebooks=(notebooks/*.ipynb); fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

passed=0
failed=0
for nb in "${notebooks[@]}"; do
  [ -f "$nb" ] || { log "no such notebook: $nb"; failed=$((failed + 1)); continue; }
  name=$(basename "$nb")
  # Committed notebooks carry no outputs.
  if ! "$PY" - "$nb" <<'EOF'; then
import json, sys
nb = json.load(open(sys.argv[1]))
dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
         and (c.get("outputs") or c.get("execution_count") is not None)]
if dirty:
    print(f"{sys.argv[1]}: cells {dirty} have stored outputs; clear them before committing "
          "(jupyter nbconvert --clear-output --inplace)", file=sys.stderr)
    sys.exit(1)
EOF
    failed=$((failed + 1))
    continue
  fi
  start=$(date +%s)
  if NO_COLOR=1 jupyter nbconvert --to notebook --execute \
    --ExecutePreprocessor.kernel_name=deno \
    --ExecutePreprocessor.timeout="$TIMEOUT" \
    --output-dir "$out" --output "$name" "$nb" >"$out/$name.log" 2>&1 &&
    "$PY" - "$out/$name" <<'EOF'; then
import json, sys
nb = json.load(open(sys.argv[1]))
bad = []
for i, c in enumerate(nb["cells"]):
    for o in c.get("outputs", []):
        if o.get("output_type") == "error":
            bad.append(f"cell {i}: {o.get('ename')}: {o.get('evalue')}")
        elif o.get("output_type") == "stream" and o.get("name") == "stderr":
            text = "".join(o.get("text", []))
            if "error:" in text.lower() or "uncaught" in text.lower():
                bad.append(f"cell {i} stderr: {text.strip()[:300]}")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
    echo "ok     $nb ($(($(date +%s) - start)) s)"
    passed=$((passed + 1))
  else
    echo "FAILED $nb ($(($(date +%s) - start)) s)"
    grep -v 'is unstable and might change' "$out/$name.log" | tail -n 12 | sed 's/^/    /'
    failed=$((failed + 1))
  fi
done

echo "notebooks: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
