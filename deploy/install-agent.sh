#!/bin/sh
# Install (or upgrade) a Vantage agent on this host as a systemd service.
#
#   sudo deploy/install-agent.sh --coordinator HOST:PORT --region REGION [options]
#
# What it does, each step safe to repeat (running it again upgrades the package and leaves
# an existing configuration alone unless you pass new values):
#   1. creates a virtualenv in /opt/vantage/venv and pip-installs Vantage into it, from this
#      checkout (default) or from --source (a path, a git URL such as git+https://..., or a
#      package spec);
#   2. writes /etc/vantage/agent.env (mode 0600) from deploy/systemd/agent.env.example,
#      setting the values given on the command line; values you do not pass are kept;
#   3. installs deploy/systemd/vantage-agent.service into /etc/systemd/system;
#   4. systemctl daemon-reload, then enable --now (restart when it was already running).
#
# Options:
#   --coordinator HOST:PORT   the coordinator's gRPC address (required on first install)
#   --region REGION           this host's region, e.g. de-fra (required on first install)
#   --token-file FILE         read the agent token from FILE (or set VANTAGE_AGENT_TOKEN in
#                             the environment; a token on the command line would leak in ps)
#   --agent-args "ARGS"       extra `vantage agent` flags, e.g. "--ca /etc/vantage/ca.pem"
#   --source SPEC             what to pip install (default: the checkout holding this script)
#   --no-start                install and enable, but do not start or restart now
#   -h, --help                this text
#
# Environment (for packagers and tests): VANTAGE_PREFIX (/opt/vantage), VANTAGE_ETC
# (/etc/vantage), VANTAGE_SYSTEMD_DIR (/etc/systemd/system), VANTAGE_PYTHON (python3),
# VANTAGE_VENV_ARGS (extra `python -m venv` flags), VANTAGE_PIP_ARGS (extra `pip install`
# flags), SYSTEMCTL (systemctl).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

prefix=${VANTAGE_PREFIX:-/opt/vantage}
etc=${VANTAGE_ETC:-/etc/vantage}
unit_dir=${VANTAGE_SYSTEMD_DIR:-/etc/systemd/system}
python=${VANTAGE_PYTHON:-python3}
systemctl=${SYSTEMCTL:-systemctl}

coordinator=""
region=""
token_file=""
agent_args=""
agent_args_set=no
source_spec=""
start=yes

die() {
    echo "install-agent: error: $*" >&2
    exit 2
}

usage() {
    sed -n '2,/^set -eu$/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --coordinator) [ $# -ge 2 ] || die "--coordinator needs HOST:PORT"; coordinator=$2; shift 2 ;;
        --coordinator=*) coordinator=${1#*=}; shift ;;
        --region) [ $# -ge 2 ] || die "--region needs a value"; region=$2; shift 2 ;;
        --region=*) region=${1#*=}; shift ;;
        --token-file) [ $# -ge 2 ] || die "--token-file needs a file"; token_file=$2; shift 2 ;;
        --token-file=*) token_file=${1#*=}; shift ;;
        --agent-args) [ $# -ge 2 ] || die "--agent-args needs a value"; agent_args=$2; agent_args_set=yes; shift 2 ;;
        --agent-args=*) agent_args=${1#*=}; agent_args_set=yes; shift ;;
        --source) [ $# -ge 2 ] || die "--source needs a value"; source_spec=$2; shift 2 ;;
        --source=*) source_spec=${1#*=}; shift ;;
        --no-start) start=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

case "$coordinator" in
    ""|*:*) ;;
    *) die "--coordinator: '$coordinator' is not HOST:PORT" ;;
esac
case "$coordinator" in
    *:|*:*[!0-9]*) die "--coordinator: '$coordinator' does not end in a numeric port" ;;
esac
case "$region" in
    *[!a-z0-9._-]*) die "--region: '$region' may only contain a-z 0-9 . _ -" ;;
esac
token=${VANTAGE_AGENT_TOKEN:-}
if [ -n "$token_file" ]; then
    [ -r "$token_file" ] || die "--token-file: cannot read '$token_file'"
    token=$(tr -d '\r\n' < "$token_file")
    [ -n "$token" ] || die "--token-file: '$token_file' is empty"
fi
case "$token$agent_args$coordinator" in
    *"
"*) die "values must be on one line" ;;
esac

unit_src=$here/systemd/vantage-agent.service
env_example=$here/systemd/agent.env.example
[ -f "$unit_src" ] || die "missing $unit_src: run this script from a Vantage checkout"
[ -f "$env_example" ] || die "missing $env_example: run this script from a Vantage checkout"
if [ -z "$source_spec" ]; then
    [ -f "$repo/pyproject.toml" ] || die "no --source given and $repo has no pyproject.toml"
    source_spec=$repo
fi

env_file=$etc/agent.env
if [ ! -f "$env_file" ]; then
    [ -n "$coordinator" ] || die "--coordinator is required on first install ($env_file does not exist)"
    [ -n "$region" ] || die "--region is required on first install ($env_file does not exist)"
fi

# 1. The virtualenv and the package.
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "$python is older than 3.11 (Vantage needs Python >= 3.11)"
if [ ! -x "$prefix/venv/bin/python" ]; then
    echo "install-agent: creating $prefix/venv"
    mkdir -p "$prefix"
    # shellcheck disable=SC2086
    "$python" -m venv ${VANTAGE_VENV_ARGS:-} "$prefix/venv" \
        || die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
fi
echo "install-agent: installing $source_spec into $prefix/venv"
# shellcheck disable=SC2086
"$prefix/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade \
    ${VANTAGE_PIP_ARGS:-} "$source_spec"
"$prefix/venv/bin/vantage" --version

# 2. The environment file: created from the example once, then only the given keys change.
set_key() {
    # set_key FILE KEY VALUE: replace KEY=... (or append it), keeping every other line.
    tmp=$1.tmp.$$
    # Through the environment, not awk -v, so backslashes in values stay as they are.
    KEY=$2 VALUE=$3 awk '
        BEGIN { key = ENVIRON["KEY"]; value = ENVIRON["VALUE"]; done = 0 }
        index($0, key "=") == 1 { if (!done) print key "=" value; done = 1; next }
        { print }
        END { if (!done) print key "=" value }
    ' "$1" > "$tmp"
    chmod 0600 "$tmp"
    mv "$tmp" "$1"
}
umask 077
mkdir -p "$etc"
if [ ! -f "$env_file" ]; then
    echo "install-agent: writing $env_file"
    cp "$env_example" "$env_file"
    chmod 0600 "$env_file"
    # The example's token and extra flags are placeholders: never install them as-is.
    set_key "$env_file" VANTAGE_AGENT_TOKEN ""
    set_key "$env_file" VANTAGE_AGENT_ARGS ""
fi
[ -z "$coordinator" ] || set_key "$env_file" VANTAGE_COORDINATOR "$coordinator"
[ -z "$region" ] || set_key "$env_file" VANTAGE_REGION "$region"
[ -z "$token" ] || set_key "$env_file" VANTAGE_AGENT_TOKEN "$token"
[ "$agent_args_set" = no ] || set_key "$env_file" VANTAGE_AGENT_ARGS "$agent_args"
chmod 0600 "$env_file"
if grep -q '^VANTAGE_AGENT_TOKEN=$' "$env_file"; then
    echo "install-agent: note: no agent token set in $env_file (fine only when the coordinator is on this host's loopback)" >&2
fi

# 3. The unit, pointing at this prefix.
umask 022
mkdir -p "$unit_dir"
unit_dst=$unit_dir/vantage-agent.service
tmp=$unit_dst.tmp.$$
sed -e "s#/opt/vantage/venv/bin/vantage#$prefix/venv/bin/vantage#" \
    -e "s#/etc/vantage/agent.env#$env_file#" "$unit_src" > "$tmp"
if [ -f "$unit_dst" ] && cmp -s "$tmp" "$unit_dst"; then
    rm -f "$tmp"
else
    echo "install-agent: installing $unit_dst"
    mv "$tmp" "$unit_dst"
    chmod 0644 "$unit_dst"
fi

# 4. systemd.
"$systemctl" daemon-reload
if [ "$start" = yes ]; then
    "$systemctl" enable vantage-agent.service
    # restart picks up a new package or configuration; it starts a stopped unit too.
    "$systemctl" restart vantage-agent.service
    echo "install-agent: vantage-agent is running; follow it with: journalctl -u vantage-agent -f"
else
    "$systemctl" enable vantage-agent.service
    echo "install-agent: vantage-agent is enabled; start it with: systemctl start vantage-agent"
fi
