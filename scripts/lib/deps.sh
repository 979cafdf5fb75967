# shellcheck shell=bash
# Sourced by scripts. forklift_apt PKG... installs the Debian packages that are missing.
forklift_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "apt: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The Debian packages that building and running Forklift needs.
FORKLIFT_RUNTIME_PACKAGES=(libopenblas-dev libjpeg-dev zlib1g-dev pkg-config)
# What the tests need on top: ONNX's backend test cases; real photos for the JPEG tests.
FORKLIFT_TEST_PACKAGES=(libonnx-testdata python3-venv opencv-doc)
# What scripts/fetch-models needs to build the bundled models: ImageNet labels and check images.
FORKLIFT_MODEL_PACKAGES=(opencv-doc python3-venv)
