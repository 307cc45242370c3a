#!/usr/bin/env bash
# Build the image from the unchanged Dockerfile without Docker or a registry, start its app under
# chroot and fill one gap through gradio_client (see docs/deploy.md, "Building the image here").
#
#   deploy/build_image.sh [--new-base] [--port N]     (the app port: default the first free one from 18600,
#                                                      outside the 7860-7959 that Gradio picks ports from)
#   deploy/build_image.sh --print-mirror              (the Debian mirror debootstrap would use, then exit)
#
# The Debian mirror is DEBIAN_MIRROR, else the first Debian archive (not -security) in this machine's own apt
# sources (/etc/apt/sources.list.d/*.sources, then sources.list and sources.list.d/*.list; APT_ETC moves /etc/apt).
#
# As root, with Debian's tools: apt-get install -y buildah debootstrap
#   1. base image: Debian bookworm from debootstrap with Python 3.11 in a venv at /opt/venv (first on
#      PATH, so `python` and `pip` are there as the Dockerfile expects); made once, --new-base remakes it
#   2. the image: buildah bud --isolation chroot, BASE_IMAGE = that base, TORCH_INDEX = a file index of
#      the local wheels (WHEELS_DIR, default /opt/wheels: the CPU torch wheel), the rest from PyPI through
#      this machine's TLS proxy: the host's CA bundle is mounted over the image's during the build only
#   3. the image's CMD runs under chroot in a mounted container, as its user, with its environment and
#      working directory, on 127.0.0.1; the image's own HEALTHCHECK command is polled until it passes
#   4. one /fill through gradio_client (the image's own), then the app is stopped and everything unmounted
set -euo pipefail

die() { echo "build_image: $*" >&2; exit 1; }
usage() { echo "usage: $0 [--new-base] [--port N] | --print-mirror" >&2; exit 2; }

# The first Debian archive in apt's sources: deb822 paragraphs (Types/URIs/Suites), then one-line "deb [opts] URI suite".
apt_mirror() {
    local etc=${APT_ETC:-/etc/apt} f found
    for f in "$etc"/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        found=$(awk 'BEGIN { RS = ""; FS = "\n" } {
            t = u = s = ""; on = 1
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^Types:/) t = $i; else if ($i ~ /^URIs:/) u = $i; else if ($i ~ /^Suites:/) s = $i
                else if ($i ~ /^Enabled:[ \t]*no/) on = 0
            }
            if (on && t ~ /[ \t]deb([ \t]|$)/ && s !~ /-security/ && u != "") { sub(/^URIs:[ \t]*/, "", u); split(u, a, /[ \t]+/); print a[1]; exit }
        }' "$f")
        [[ -n $found ]] && { echo "$found"; return; }
    done
    for f in "$etc"/sources.list "$etc"/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        found=$(sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 !~ /-security/ { print $2; exit }')
        [[ -n $found ]] && { echo "$found"; return; }
    done
}

new_base=0 port="" print_mirror=0
while (($#)); do
    case $1 in
        --new-base) new_base=1 ;;
        --print-mirror) print_mirror=1 ;;
        --port) [[ ${2:-} =~ ^[0-9]+$ ]] || usage; port=$2; shift ;;
        *) usage ;;
    esac
    shift
done

debian_mirror() {
    local found=${DEBIAN_MIRROR:-$(apt_mirror)}
    [[ -n $found ]] || die "no Debian mirror: set DEBIAN_MIRROR, or add one to this machine's apt sources"
    echo "$found"
}
if ((print_mirror)); then debian_mirror; exit 0; fi

for tool in buildah debootstrap chroot mount ss; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install -y buildah debootstrap iproute2"
done
mirror=$(debian_mirror)
((EUID == 0)) || die "run as root (buildah's storage, debootstrap and chroot need it)"

repo=$(cd "$(dirname "$0")/.." && pwd)
base=localhost/dgemma-base:bookworm
image=localhost/dgemma-app:latest
wheels=${WHEELS_DIR:-/opt/wheels}
cas=/etc/ssl/certs/ca-certificates.crt  # Debian's pip trusts this bundle
work=$(mktemp -d /tmp/dgemma-image.XXXXXX)
containers=() root="" app=""

cleanup() {
    if [[ -n $app ]]; then kill "$app" 2>/dev/null || true; wait "$app" 2>/dev/null || true; fi
    if [[ -n $root ]]; then umount -R "$root/dev" "$root/proc" 2>/dev/null || true; fi
    for c in "${containers[@]}"; do buildah rm "$c" >/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# 1. the Debian base image
started=$SECONDS
if ((new_base)) || ! buildah inspect --type image "$base" >/dev/null 2>&1; then
    c=$(buildah from scratch); containers+=("$c")
    rootfs=$(buildah mount "$c")
    nice -n 10 debootstrap --variant=minbase --include=python3-venv,ca-certificates bookworm "$rootfs" "$mirror"
    chroot "$rootfs" python3 -m venv /opt/venv
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/etc/resolv.conf "$rootfs"/etc/hostname
    buildah config --env LANG=C.UTF-8 --env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd python "$c"
    buildah commit --quiet "$c" "$base" >/dev/null
    base_time="$((SECONDS - started)) s"
else
    base_time="reused (--new-base remakes it)"
fi

# 2. the image, from the unchanged Dockerfile; pip inside it reads the local wheels as a simple index
for whl in "$wheels"/*.whl; do
    [[ -e $whl ]] || die "no wheels in $wheels (set WHEELS_DIR to the folder with the CPU torch wheel)"
    name=${whl##*/}
    project=${name%%-*}; project=${project,,}; project=${project//_/-}  # torch-2.13.0+cpu-….whl -> torch
    mkdir -p "$work/index/$project"
    cp -l "$whl" "$work/index/$project/" 2>/dev/null || cp "$whl" "$work/index/$project/"
    echo "<a href=\"${name//+/%2B}\">$name</a>" >>"$work/index/$project/index.html"
done
started=$SECONDS
nice -n 10 buildah bud --isolation chroot --layers --force-rm --format docker \
    --build-arg BASE_IMAGE="$base" --build-arg TORCH_INDEX=file:///wheel-index \
    --volume "$work/index:/wheel-index:ro" --volume "$cas:$cas:ro" --tag "$image" "$repo"
build_time=$((SECONDS - started))
size=$(buildah images --format '{{.Size}}' "$image")

# 3. the image's app under chroot, as the image's user, on 127.0.0.1
c=$(buildah from "$image"); containers+=("$c")
root=$(buildah mount "$c")
field() { buildah inspect --format "$1" "$c"; }
mapfile -t env < <(field '{{range .OCIv1.Config.Env}}{{println .}}{{end}}')
mapfile -t cmd < <(field '{{range .OCIv1.Config.Cmd}}{{println .}}{{end}}')
mapfile -t check < <(field '{{range .Docker.Config.Healthcheck.Test}}{{println .}}{{end}}')
workdir=$(field '{{.OCIv1.Config.WorkingDir}}')
user=$(field '{{.OCIv1.Config.User}}')
IFS=: read -r _ _ uid gid _ home _ < <(grep "^$user:" "$root/etc/passwd") || die "user $user is not in the image's /etc/passwd"
case ${check[0]:-} in
    CMD) check=("${check[@]:1}") ;;
    CMD-SHELL) check=(/bin/sh -c "${check[1]}") ;;
    *) die "the image has no HEALTHCHECK command (built without --format docker?)" ;;
esac
taken() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
if [[ -z $port ]]; then
    port=18600; while taken "$port"; do ((++port)); done
elif taken "$port"; then
    die "port $port is taken: pass another --port"
fi
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
# a command prefix, not a function: chroot and env exec, so $! below is the app's own pid
in_image=(chroot --userspec="$uid:$gid" --groups="$gid" "$root" /usr/bin/env -i -C "$workdir" "${env[@]}" HOME="$home"
    GRADIO_SERVER_NAME=127.0.0.1 DGEMMA_PORT="$port")
started=$SECONDS
"${in_image[@]}" "${cmd[@]}" >"$work/app.log" 2>&1 &
app=$!
ours() { ss -Hltnp "sport = :$port" | grep -q "pid=$app,"; }  # the port is our app's, not a newcomer's
until "${in_image[@]}" "${check[@]}" >/dev/null 2>&1 && ours; do
    kill -0 "$app" 2>/dev/null || { cat "$work/app.log" >&2; die "the app exited before its health check passed"; }
    ((SECONDS - started < 300)) || { cat "$work/app.log" >&2; die "no healthy app after 300 s"; }
    sleep 1
done
health_time=$((SECONDS - started))

# 4. one fill through the API
fill=$("${in_image[@]}" python -c '
import json, sys
from gradio_client import Client
text, report, stats, _ = Client(sys.argv[1], verbose=False).predict(
    text="def add(a, b):\n    return <FILL:8>\n", language="python", seed=1, api_name="/fill")
print(text, end="")
print("report:", json.dumps(report))
print("stats:", json.dumps(stats))
sys.exit(0 if report["status"] == "done" and "<FILL" not in text else 1)
' "http://127.0.0.1:$port/") || { echo "$fill"; die "the fill failed"; }

cat <<EOF
--- $image, built from the unchanged Dockerfile
base image (debootstrap): $base_time
image build (buildah bud): $build_time s
image size: $size
app healthy after: $health_time s
fill of "def add(a, b):\n    return <FILL:8>\n":
$fill
EOF
