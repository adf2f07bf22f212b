#!/bin/sh
# The container image's install steps, in one place: the Dockerfile runs this script, and
# tests/deploy/test_image_install.py runs it into a temporary directory and starts what it installed,
# so the test exercises exactly what the image does.
#
#   scripts/image-install.sh SOURCE PREFIX
#
# SOURCE is the project (pyproject.toml, requirements-runtime.lock, src/); PREFIX becomes a
# virtual environment holding Signoff and its runtime dependencies only, exactly as pinned in
# requirements-runtime.lock (`make lock` derives it from requirements.lock, whose versions it
# keeps, leaving out the development tools). UV names the uv binary to use; without it, uv is
# installed from PyPI into a throwaway environment. UV_OFFLINE=1 makes every step use uv's cache
# only (the tests: no network).
set -eu

source_dir=$(cd "$1" && pwd)
prefix=$2
python=$(command -v python3)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1

if [ -z "${UV:-}" ]; then
    "$python" -m venv "$work/uv"
    "$work/uv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check 'uv>=0.4,<1'
    UV="$work/uv/bin/uv"
fi

"$UV" build --quiet --wheel --out-dir "$work/dist" "$source_dir"

"$UV" venv --quiet --python "$python" "$prefix"
"$UV" pip sync --quiet --python "$prefix/bin/python" "$source_dir/requirements-runtime.lock"
"$UV" pip install --quiet --python "$prefix/bin/python" --no-deps "$work"/dist/signoff-*.whl
"$UV" pip check --quiet --python "$prefix/bin/python"
# Compile every module now, as the user that owns the files: the service's user cannot write
# here, and would otherwise compile them on each start.
"$prefix/bin/python" -m compileall -q "$prefix/lib" >/dev/null
