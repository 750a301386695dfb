#!/bin/sh
# The container's entrypoint: turns a StatefulSet pod's name (cairn-0, cairn-1, ...) and a few
# environment variables into `cairn node`'s CAIRN_* settings, then runs the node. Any CAIRN_*
# variable set already wins over what is derived here (docs/operations.md, deploy/README.md).
#
#   POD_NAME           the pod's name (default: the hostname); its ordinal picks the node
#   CAIRN_PEER_DOMAIN  the headless service's domain, e.g. cairn-peers.default.svc.cluster.local;
#                      pods are reached at <pod>.<domain>
#   CAIRN_REPLICAS     pods in the initial cluster (default 3); a pod with a higher ordinal joins
#   CAIRN_HTTP_PORT, CAIRN_PEER_PORT, CAIRN_REDIS_PORT, CAIRN_TEXT_PORT, CAIRN_GRPC_PORT
#                      ports (defaults 8081, 7001, 6379, 6661; gRPC off unless set)
#   CAIRN_CERT_DIR     the cluster CA (ca.crt) and node certificates (node-<ordinal+1>.crt/.key)
#   CAIRN_BIN          the command that runs cairn (default: node /app/bin/cairn.js)
set -eu

pod="${POD_NAME:-$(hostname)}"
ordinal="${pod##*-}"
base="${pod%-*}"
case "$ordinal" in
  '' | *[!0-9]*)
    echo "entrypoint: pod name $pod does not end in -<ordinal>" >&2
    exit 2
    ;;
esac
replicas="${CAIRN_REPLICAS:-3}"
http_port="${CAIRN_HTTP_PORT:-8081}"
peer_port="${CAIRN_PEER_PORT:-7001}"
cert_dir="${CAIRN_CERT_DIR:-/certs}"

: "${CAIRN_NAME:=$pod}"
: "${CAIRN_DATA_DIR:=/data}"
: "${CAIRN_HTTP_LISTEN:=0.0.0.0:$http_port}"
: "${CAIRN_PEER_LISTEN:=0.0.0.0:$peer_port}"
: "${CAIRN_REDIS_LISTEN:=0.0.0.0:${CAIRN_REDIS_PORT:-6379}}"
: "${CAIRN_TEXT_LISTEN:=0.0.0.0:${CAIRN_TEXT_PORT:-6661}}"
if [ -n "${CAIRN_GRPC_PORT:-}" ]; then : "${CAIRN_GRPC_LISTEN:=0.0.0.0:$CAIRN_GRPC_PORT}"; fi
# The transport trusts a peer by the name in its certificate: node-<id>, id = ordinal + 1.
: "${CAIRN_TLS_CA:=$cert_dir/ca.crt}"
: "${CAIRN_TLS_CERT:=$cert_dir/node-$((ordinal + 1)).crt}"
: "${CAIRN_TLS_KEY:=$cert_dir/node-$((ordinal + 1)).key}"
: "${CAIRN_LOG_FORMAT:=json}"

if [ -n "${CAIRN_PEER_DOMAIN:-}" ]; then
  host="$pod.$CAIRN_PEER_DOMAIN"
  : "${CAIRN_ADVERTISE_HTTP:=http://$host:$http_port}"
  : "${CAIRN_ADVERTISE_PEER:=$host:$peer_port}"
  if [ -z "${CAIRN_INITIAL_CLUSTER:-}" ] && [ -z "${CAIRN_JOIN:-}" ]; then
    if [ "$ordinal" -lt "$replicas" ]; then
      members=""
      i=0
      while [ "$i" -lt "$replicas" ]; do
        members="${members:+$members,}$base-$i=$base-$i.$CAIRN_PEER_DOMAIN:$peer_port"
        i=$((i + 1))
      done
      CAIRN_INITIAL_CLUSTER="$members"
    else
      # A pod added by scaling up joins through the first pod (with auth on, set CAIRN_TOKEN).
      CAIRN_JOIN="http://$base-0.$CAIRN_PEER_DOMAIN:$http_port"
    fi
  fi
fi

export CAIRN_NAME CAIRN_DATA_DIR CAIRN_HTTP_LISTEN CAIRN_PEER_LISTEN CAIRN_REDIS_LISTEN CAIRN_TEXT_LISTEN
export CAIRN_TLS_CA CAIRN_TLS_CERT CAIRN_TLS_KEY CAIRN_LOG_FORMAT
for name in CAIRN_GRPC_LISTEN CAIRN_ADVERTISE_HTTP CAIRN_ADVERTISE_PEER CAIRN_INITIAL_CLUSTER CAIRN_JOIN; do
  eval "set_=\${$name+x}"
  if [ -n "$set_" ]; then export "${name?}"; fi
done

# shellcheck disable=SC2086
exec ${CAIRN_BIN:-node /app/bin/cairn.js} node "$@"
