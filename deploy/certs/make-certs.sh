#!/bin/sh
# One-shot init: every certificate of the deployment, made once by `dcii certs` into $PKI (compose: a bind
# mount of deploy/pki; Kubernetes: run it once and load the results as Secrets, see docs/RUNBOOK.md).
#   $PKI/ca/          the CA and its key (stays here, root only: issue more with `dcii certs issue --dir`)
#   $PKI/dcii/        what a search_service instance mounts: ca.pem, server.pem + key, probe.pem + key
#                     (the health probe), dcii-store.pem + key (its client certificate to OpenSearch),
#                     dcii-peer.pem + key (its client certificate to the other instances: RUNBOOK)
#   $PKI/opensearch/  per node: node.pem + key, ca.pem; admin.pem + key for the operators
# Runs again harmlessly: an existing CA is kept.
set -eu
PKI=${PKI:-/pki}
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python}
SERVER_NAMES=${DCII_SERVER_NAMES:-"dcii-lb search-1 search-2"}
NODES=${OPENSEARCH_NODES:-"opensearch-1 opensearch-2 opensearch-3"}
NODE_NAMES=${OPENSEARCH_NAMES:-""}  # more names every node answers to (Kubernetes: its Services)
DCII_UID=${DCII_UID:-10001}
OPENSEARCH_UID=${OPENSEARCH_UID:-1000}

if [ -f "$PKI/ca/ca.pem" ]; then
  # A deployment made before the instances asked one another (RUNBOOK, upgrading): issue their peer
  # certificate from the CA already there, if its key is (else issue it where the key is kept).
  if [ ! -f "$PKI/dcii/dcii-peer.pem" ] && [ -f "$PKI/ca/ca-key.pem" ]; then
    [ -f "$PKI/ca/dcii-peer.pem" ] || dcii certs issue dcii-peer --agency DSS --dir "$PKI/ca"
    cp "$PKI/ca/dcii-peer.pem" "$PKI/ca/dcii-peer-key.pem" "$PKI/dcii/"
    if [ "$(id -u)" = 0 ]; then chown "$DCII_UID:$DCII_UID" "$PKI/dcii/dcii-peer.pem" "$PKI/dcii/dcii-peer-key.pem"; fi
    echo "issued the instances' peer certificate into $PKI/dcii: accredit dcii-peer on every instance (RUNBOOK)"
  elif [ ! -f "$PKI/dcii/dcii-peer.pem" ]; then
    echo "no peer certificate in $PKI/dcii and no CA key here: issue dcii-peer where the CA's key is kept (RUNBOOK, Upgrading)"
  fi
  echo "a CA is already in $PKI/ca: nothing else to do (see RUNBOOK: rotating certificates)"
  exit 0
fi
set --
for name in $SERVER_NAMES; do set -- "$@" --hostname "$name"; done
dcii certs init --dir "$PKI/ca" "$@"
dcii certs issue probe --agency DSS --dir "$PKI/ca"
dcii certs issue dcii-store --agency DSS --dir "$PKI/ca"
dcii certs issue dcii-peer --agency DSS --dir "$PKI/ca"
"$PYTHON" "$HERE/opensearch_certs.py" --ca-dir "$PKI/ca" --out "$PKI/opensearch" --nodes "$NODES" \
  --names "$NODE_NAMES"

mkdir -p "$PKI/dcii"
chmod 0700 "$PKI/dcii"
for stem in server probe dcii-store dcii-peer; do
  cp "$PKI/ca/$stem.pem" "$PKI/ca/$stem-key.pem" "$PKI/dcii/"
done
cp "$PKI/ca/ca.pem" "$PKI/dcii/ca.pem"
if [ "$(id -u)" = 0 ]; then
  chown -R "$DCII_UID:$DCII_UID" "$PKI/dcii"
  chown -R "$OPENSEARCH_UID:$OPENSEARCH_UID" "$PKI/opensearch"
fi
echo "certificates written to $PKI"
