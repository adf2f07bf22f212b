#!/bin/sh
# Builds the image and starts it, as far as a machine with a Docker daemon can check it alone:
# `signoff serve` on SQLite answers /readyz, the image's HEALTHCHECK turns healthy, the process
# is not root, `signoff doctor` runs. Prints the image's size and the time from start to ready.
#
#   scripts/container-smoke.sh
#   BASE_IMAGE=my-python:3.11 DOCKER_BUILD_ARGS="--network host" scripts/container-smoke.sh
#
# The container runs without a network (--network none): every probe is made inside it.
set -eu
cd "$(dirname "$0")/.."
tag=${TAG:-signoff:smoke}
name=signoff-smoke-$$

# shellcheck disable=SC2086 # DOCKER_BUILD_ARGS is a list of options
docker build --quiet ${DOCKER_BUILD_ARGS:-} \
    ${BASE_IMAGE:+--build-arg "BASE_IMAGE=$BASE_IMAGE"} --tag "$tag" . >/dev/null
trap 'docker rm --force "$name" >/dev/null 2>&1 || true' EXIT

ready() {
    docker exec "$name" python3 -c "import urllib.request as r; r.urlopen('http://127.0.0.1:8000/readyz', timeout=2)" 2>/dev/null
}
started=$(date +%s.%N)
docker run --detach --name "$name" --network none \
    --health-interval 1s --health-start-period 1s "$tag" >/dev/null
until ready; do
    if [ "$(docker inspect --format '{{.State.Running}}' "$name")" != true ]; then
        docker logs "$name"
        echo "container-smoke: the container exited" >&2
        exit 1
    fi
    sleep 0.2
done
seconds=$(echo "$(date +%s.%N) - $started" | bc)

for _ in $(seq 1 60); do
    health=$(docker inspect --format '{{.State.Health.Status}}' "$name")
    [ "$health" = healthy ] && break
    sleep 0.5
done
[ "$health" = healthy ] || { echo "container-smoke: HEALTHCHECK says $health" >&2; exit 1; }
uid=$(docker exec "$name" id -u)
[ "$uid" != 0 ] || { echo "container-smoke: the service runs as root" >&2; exit 1; }
docker exec "$name" signoff doctor >/dev/null || { echo "container-smoke: doctor failed" >&2; exit 1; }

size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "container-smoke: ok: ready after ${seconds} s, healthy, uid ${uid}, image $((size / 1000000)) MB"
