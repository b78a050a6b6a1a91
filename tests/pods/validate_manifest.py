"""Validate an environment's rendered manifest for podman kube play and Kubernetes.

Usage: /usr/bin/python3 validate_manifest.py COMBINED_YAML DEPLOY_CONFIGMAP_YAML
           --claims NAME[,NAME...] [--loopback-only]

Checks: every document parses; kinds are Pod/Secret/ConfigMap with apiVersion
v1; names are valid Kubernetes names; exactly one Pod; every volumeMount names
a volume of the Pod and every volume is mounted; every Secret volume names a
Secret of the manifest, every configMap volume a ConfigMap of the manifest or
the deploy ConfigMap, every persistentVolumeClaim one of --claims; every
configMapKeyRef/configMapRef names the deploy ConfigMap and (unless optional)
one of its keys; Secret data is base64; published ports are well formed (and
on 127.0.0.1 with --loopback-only). Needs python3-yaml (Debian's
/usr/bin/python3). Prints the problems, exit 1 if any.
"""
import argparse
import base64
import binascii
import re
import sys

import yaml

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def load_all(path, problems):
    try:
        with open(path, encoding="utf-8") as handle:
            return [d for d in yaml.safe_load_all(handle) if d is not None]
    except yaml.YAMLError as exc:
        problems.append(f"{path}: YAML does not parse: {exc}")
        return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("combined")
    ap.add_argument("configmap")
    ap.add_argument("--claims", default="")
    ap.add_argument("--loopback-only", action="store_true")
    args = ap.parse_args()
    problems = []
    claims = {c for c in args.claims.split(",") if c}

    cms = load_all(args.configmap, problems)
    deploy = None
    if len(cms) != 1:
        problems.append(f"{args.configmap}: expected exactly one document, found {len(cms)}")
    else:
        deploy = cms[0]
        if deploy.get("apiVersion") != "v1":
            problems.append(f"{args.configmap}: apiVersion is {deploy.get('apiVersion')!r}, Kubernetes needs 'v1'")
        if deploy.get("kind") != "ConfigMap":
            problems.append(f"{args.configmap}: kind is {deploy.get('kind')!r}, expected ConfigMap")
        for key, value in (deploy.get("data") or {}).items():
            if not DATA_KEY.match(str(key)):
                problems.append(f"{args.configmap}: invalid data key {key!r}")
            if not isinstance(value, str):
                problems.append(f"{args.configmap}: value of {key} must be a string (quote it)")
    deploy_name = (deploy or {}).get("metadata", {}).get("name")
    deploy_keys = set(((deploy or {}).get("data") or {}).keys())

    docs = load_all(args.combined, problems)
    secrets, configmaps, pods = {}, {deploy_name: deploy_keys} if deploy_name else {}, []
    for i, doc in enumerate(docs):
        where = f"{args.combined}: document {i + 1}"
        kind, api = doc.get("kind"), doc.get("apiVersion")
        if kind not in ("Pod", "Secret", "ConfigMap"):
            problems.append(f"{where}: unexpected kind {kind!r}")
        if api != "v1":
            problems.append(f"{where} ({kind}): apiVersion is {api!r}, expected 'v1'")
        name = (doc.get("metadata") or {}).get("name", "")
        if not DNS_SUBDOMAIN.match(name or "") or len(name) > 253:
            problems.append(f"{where} ({kind}): invalid name {name!r}")
        if kind == "Secret":
            if "stringData" in doc:
                problems.append(f"{where}: Secret {name} uses stringData, which podman 4.3 ignores")
            for key, value in (doc.get("data") or {}).items():
                if not DATA_KEY.match(key):
                    problems.append(f"{where}: Secret {name} has invalid key {key!r}")
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, TypeError):
                    problems.append(f"{where}: Secret {name} key {key} is not base64")
            secrets[name] = set((doc.get("data") or {}).keys())
        elif kind == "ConfigMap":
            configmaps[name] = set((doc.get("data") or {}).keys())
        elif kind == "Pod":
            pods.append(doc)
    if len(pods) != 1:
        problems.append(f"{args.combined}: expected exactly one Pod, found {len(pods)}")

    for pod in pods:
        pname = pod["metadata"]["name"]
        if not DNS_LABEL.match(pname) or len(pname) > 63:
            problems.append(f"Pod name {pname!r} is not a valid DNS label")
        spec = pod.get("spec") or {}
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        mounted = set()
        for vname, vol in volumes.items():
            if not DNS_LABEL.match(vname or ""):
                problems.append(f"volume name {vname!r} is not a valid DNS label")
            if "secret" in vol:
                sname = vol["secret"].get("secretName")
                if sname not in secrets:
                    problems.append(f"volume {vname}: Secret {sname!r} is not in the manifest")
                if "optional" not in vol["secret"]:
                    problems.append(f"volume {vname}: secret volumes need an explicit optional (podman 4.3 crashes otherwise)")
            elif "configMap" in vol:
                cname = vol["configMap"].get("name")
                if cname not in configmaps:
                    problems.append(f"volume {vname}: ConfigMap {cname!r} does not resolve")
            elif "persistentVolumeClaim" in vol:
                claim = vol["persistentVolumeClaim"].get("claimName")
                if claim not in claims:
                    problems.append(f"volume {vname}: claim {claim!r} is not one of the environment's volumes {sorted(claims)}")
                elif not DNS_SUBDOMAIN.match(claim):
                    problems.append(f"volume {vname}: claim name {claim!r} is not valid for Kubernetes")
            else:
                problems.append(f"volume {vname}: unsupported volume type {sorted(vol)}")
        for ctr in spec.get("containers") or []:
            cname = ctr.get("name", "")
            if not DNS_LABEL.match(cname):
                problems.append(f"container name {cname!r} is not a valid DNS label")
            if not ctr.get("image"):
                problems.append(f"container {cname}: no image")
            for mount in ctr.get("volumeMounts") or []:
                if mount.get("name") not in volumes:
                    problems.append(f"container {cname}: volumeMount {mount.get('name')!r} names no volume")
                mounted.add(mount.get("name"))
                if str(mount.get("subPath", "")).startswith("/"):
                    problems.append(f"container {cname}: absolute subPath {mount['subPath']!r} is invalid in Kubernetes")
            for env in ctr.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                if ref:
                    if ref.get("name") not in configmaps:
                        problems.append(f"container {cname}: env {env['name']} names ConfigMap {ref.get('name')!r}, which does not resolve")
                    elif ref.get("key") not in configmaps[ref["name"]] and not ref.get("optional", False):
                        problems.append(f"container {cname}: env {env['name']} needs key {ref.get('key')!r} of ConfigMap {ref['name']}, which is missing")
                sref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if sref and sref.get("name") not in secrets:
                    problems.append(f"container {cname}: env {env['name']} names Secret {sref.get('name')!r}, which is not in the manifest")
                if "value" in env and not isinstance(env["value"], str):
                    problems.append(f"container {cname}: env {env['name']} value must be a string")
            for src in ctr.get("envFrom") or []:
                ref = src.get("configMapRef")
                if ref and ref.get("name") not in configmaps:
                    problems.append(f"container {cname}: envFrom ConfigMap {ref.get('name')!r} does not resolve")
            for port in ctr.get("ports") or []:
                for field in ("containerPort", "hostPort"):
                    if field in port and not (isinstance(port[field], int) and 0 < port[field] < 65536):
                        problems.append(f"container {cname}: {field} {port[field]!r} is not a port number")
                if args.loopback_only and "hostPort" in port and port.get("hostIP") != "127.0.0.1":
                    problems.append(f"container {cname}: port {port.get('containerPort')} is published on {port.get('hostIP')!r}, not 127.0.0.1")
        for vname in volumes:
            if vname not in mounted:
                problems.append(f"volume {vname} is not mounted by any container")

    for p in problems:
        print(f"problem: {p}")
    print(f"validate_manifest: {args.combined}: {len(docs)} documents, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
