#!/bin/bash
# Pod test (a): render all five environments' manifests from example inputs
# and validate them (YAML parses with python3-yaml; kinds and apiVersions v1;
# every Secret, ConfigMap, volume and claim resolves; published ports on
# 127.0.0.1). Also checks the clear errors for missing inputs. Needs no
# podman; writes only under a temporary directory it removes.
set -euo pipefail
export TEST_NAME=manifests
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORK=$(mktemp -d /tmp/ssb-pods-manifests.XXXXXX)
trap 'rm -rf -- "$WORK"' EXIT
ENVS=(dev_dummyauth dev_dummyauth_extslurm dev_realauth dev_realauth_zenithclient prod)

# Example inputs a site would put in the deploy directory.
make_inputs() { # ENV DIR
  local env=$1 dir=$2
  mkdir -p "$dir"
  cp "${REPO_ROOT}/environments/${env}/deploy-configmap.example.yaml" "${dir}/deploy-configmap.yaml"
  case $env in
    dev_dummyauth_extslurm|prod)
      ssh-keygen -q -t ed25519 -N "" -C "test client key" -f "${dir}/ssh_client_key"
      ssh-keygen -q -t ed25519 -N "" -C "test host key" -f "${WORK}/hostkey-${env}"
      printf 'ssh.example %s\n' "$(cut -d' ' -f1,2 "${WORK}/hostkey-${env}.pub")" >"${dir}/ssh_known_hosts"
      ;;
  esac
  case $env in
    dev_realauth_zenithclient|prod)
      ssh-keygen -q -t ed25519 -N "" -C "test zenith key" -f "${dir}/ssh_zenith_client_key"
      printf 'serverAddress: zenith.example\nauthOidcIssuer: https://keycloak.example/realms/name\nauthOidcClientId: example\nauthOidcClientSecret: example\ndebug: true\n' \
        >"${dir}/zenith_client_config.yaml"
      ;;
  esac
}

for env in "${ENVS[@]}"; do
  dir="${WORK}/${env}"
  make_inputs "$env" "$dir"
  if out=$(bash "${REPO_ROOT}/environments/build_env_manifest.sh" "$env" "$dir" 2>&1); then
    pass "${env}: build_env_manifest.sh renders combined.yaml"
  else
    fail "${env}: build_env_manifest.sh failed: ${out}"
    continue
  fi
  # shellcheck source=/dev/null
  . "${REPO_ROOT}/environments/${env}/env.conf"
  slug=${env//_/-}
  claims=()
  for v in "${SSB_ENV_VOLUMES[@]}"; do claims+=("${v//_/-}-${slug}"); done
  claims_csv=$(IFS=,; echo "${claims[*]}")
  if out=$(/usr/bin/python3 "${PODS_DIR}/validate_manifest.py" "${dir}/combined.yaml" "${dir}/deploy-configmap.yaml" \
      --claims "$claims_csv" --loopback-only 2>&1); then
    pass "${env}: manifest valid (${out##*: })"
  else
    fail "${env}: manifest invalid:"$'\n'"${out}"
  fi
  check "${env}: combined.yaml is private (mode 0600)" test "$(stat -c %a "${dir}/combined.yaml")" = 600
  check "${env}: the static Pod manifest parses on its own" /usr/bin/python3 -c \
    'import sys, yaml; d = list(yaml.safe_load_all(open(sys.argv[1]))); assert len(d) == 1 and d[0]["apiVersion"] == "v1" and d[0]["kind"] == "Pod"' \
    "${REPO_ROOT}/environments/${env}/pod.yaml"
  # Re-rendering keeps the generated keys (same host key across restarts).
  if [[ $SSB_ENV_SLURM_IN_POD == 1 ]]; then
    before=$(sha256sum "${dir}/ssh_host_ed25519_key")
    bash "${REPO_ROOT}/environments/build_env_manifest.sh" "$env" "$dir" >/dev/null 2>&1
    check "${env}: re-rendering keeps the generated host key" test "$before" = "$(sha256sum "${dir}/ssh_host_ed25519_key")"
  fi
done

# Options rewrite the published address and port.
dir="${WORK}/dev_dummyauth"
bash "${REPO_ROOT}/environments/build_env_manifest.sh" dev_dummyauth "$dir" --hub-port 18123 >/dev/null 2>&1
check "--hub-port rewrites hostPort" grep -q 'hostPort: 18123  # ssb:hub-port' "${dir}/combined.yaml"

# Clear errors for missing inputs, naming each missing file / key.
dir="${WORK}/missing-files"
mkdir -p "$dir"
cp "${REPO_ROOT}/environments/prod/deploy-configmap.example.yaml" "${dir}/deploy-configmap.yaml"
out=$(bash "${REPO_ROOT}/environments/build_env_manifest.sh" prod "$dir" 2>&1) && status=0 || status=$?
check "prod without pre-made files fails" test "$status" -ne 0
for f in ssh_client_key ssh_client_key.pub ssh_known_hosts ssh_zenith_client_key ssh_zenith_client_key.pub zenith_client_config.yaml; do
  check "the error names missing ${f}" grep -q "missing required file: ${dir}/${f}\$" <<<"$out"
done
dir="${WORK}/missing-key"
mkdir -p "$dir"
sed '/dummyAuthPassword/d' "${REPO_ROOT}/environments/dev_dummyauth/deploy-configmap.example.yaml" >"${dir}/deploy-configmap.yaml"
out=$(bash "${REPO_ROOT}/environments/build_env_manifest.sh" dev_dummyauth "$dir" 2>&1) && status=0 || status=$?
check "a missing ConfigMap key fails, naming the key" grep -q 'missing key(s) for dev_dummyauth: dummyAuthPassword' <<<"$out"
out=$(bash "${REPO_ROOT}/environments/build_env_manifest.sh" no_such_env "$dir" 2>&1) && status=0 || status=$?
check "an unknown environment is refused" grep -q "unknown environment 'no_such_env'" <<<"$out"

summary
