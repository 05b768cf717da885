#!/bin/sh
# Prints a Fermyon Cloud variant of spin.toml on stdout: the same app without the Redis-triggered
# `worker` (Fermyon Cloud does not run Redis triggers and refuses such apps at deploy time).
# With no worker, leave `redis_address` empty: jobs (cover extraction) then run inline in the
# upload request, as on one machine without Redis.
#
#   sh deploy/fermyon-cloud/cloud-manifest.sh > spin.cloud.toml   # at the repo root: component
#   spin cloud deploy --from spin.cloud.toml                       # paths are relative to it
#
# It drops [application.trigger.redis], every [[trigger.redis]] and every [component.worker*]
# table, and the "{{ redis_address }}" entry of allowed_outbound_hosts (an outbound host that
# would be empty anyway). Everything else is copied unchanged, so re-run it after editing
# spin.toml instead of editing its output.
set -eu
manifest="${1:-$(dirname "$0")/../../spin.toml}"
awk '
  /^[[:space:]]*\[/ {
    h = $0
    sub(/[[:space:]]*#.*/, "", h)
    gsub(/[[:space:]]/, "", h)
    skip = (h == "[application.trigger.redis]" || h == "[[trigger.redis]]" ||
            h == "[component.worker]" || h ~ /^\[component\.worker\./)
  }
  skip { next }
  /^[[:space:]]*allowed_outbound_hosts[[:space:]]*=/ {
    gsub(/,[[:space:]]*"\{\{ *redis_address *\}\}"/, "")
    gsub(/"\{\{ *redis_address *\}\}"[[:space:]]*,[[:space:]]*/, "")
  }
  { print }
' "$manifest"
