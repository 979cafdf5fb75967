# shellcheck shell=bash
# Sourced by scripts. Defines forklift_venv, which makes (once) the Python
# virtualenv at $ROOT/.cache/venv with the packages of scripts/requirements.txt,
# and exports FORKLIFT_PY (its python). Fast when already done: pip runs only
# when the requirements file changed since the last successful install.

_forklift_venv_lib_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FORKLIFT_ROOT="$(cd "$_forklift_venv_lib_dir/../.." && pwd)"

forklift_venv() {
    local root="$FORKLIFT_ROOT"
    local venv="$root/.cache/venv"
    local req="$root/scripts/requirements.txt"
    local marker="$venv/.forklift-requirements.sha256"
    local want have=""

    if [ ! -x "$venv/bin/python" ]; then
        echo "venv: creating $venv" >&2
        mkdir -p "$root/.cache"
        python3 -m venv "$venv" || { echo "venv: python3 -m venv failed" >&2; return 1; }
    fi

    want="$(sha256sum "$req" | cut -d' ' -f1)"
    [ -f "$marker" ] && have="$(cat "$marker")"
    if [ "$want" != "$have" ]; then
        echo "venv: installing scripts/requirements.txt" >&2
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$req" || { echo "venv: pip install failed" >&2; return 1; }
        echo "$want" > "$marker"
    fi

    export FORKLIFT_PY="$venv/bin/python"
}
