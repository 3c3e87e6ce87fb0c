#!/usr/bin/env python3
"""Offline checks of the deployment artifacts, run by tests/deploy/validate.sh.

  validate_manifests.py convert-crd CRD.yaml OUTDIR
      Writes the JSON Schema of every served version of a CustomResourceDefinition
      as OUTDIR/<kind>-<group>-<version>.json (kubeconform's openapi2jsonschema
      idea, strict: an object with declared properties admits no others unless
      the CRD says x-kubernetes-preserve-unknown-fields).

  validate_manifests.py check --k8s-versions 1.29,1.37 --crd-dir DIR
        [--render LABEL=FILE]... [--file FILE]...
        [--compose FILE --compose-schema FILE]
      Validates every object of each rendered kustomization and each plain
      manifest against the strict Kubernetes JSON schemas bundled by the PyPI
      package kubernetes-validate (every version given) or, for custom
      resources, the schemas in --crd-dir; then cross-checks each render
      (references, autoscalers, probes, grace period) and the Compose file
      against the Compose Specification's schema. One PASS or FAIL line per
      object; exit 1 when anything failed.

  validate_manifests.py runtime-libs DOCKERFILE BINARY...
      Checks that the Debian packages installed by the Dockerfile's last stage
      provide every shared library the binaries link against directly
      (readelf, ldconfig and dpkg of this bookworm machine).
"""
import argparse
import json
import pathlib
import re
import shlex
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

K8S_DEFS = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = K8S_DEFS + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
SECRET_TEMPLATE_NAMES = set()  # Secrets given with --file: pods may refer to them


# ---------------------------------------------------------------- CRD conversion

def openapi_to_jsonschema(node):
    """One OpenAPI v3 schema node of a CRD as JSON Schema 2020-12."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {name: openapi_to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = openapi_to_jsonschema(value) if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [openapi_to_jsonschema(sub) for sub in value]
        elif key == "nullable" or key.startswith("x-kubernetes-"):
            continue
        else:
            out[key] = value
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    open_object = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
        "x-kubernetes-embedded-resource")
    if "properties" in out and "additionalProperties" not in out and not open_object:
        out["additionalProperties"] = False
    return out


def convert_crd(crd_path, outdir):
    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for crd in yaml.safe_load_all(open(crd_path)):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served", True):
                continue
            schema = openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
            props = schema.setdefault("properties", {})
            props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
            props["kind"] = {"type": "string", "enum": [kind]}
            props["metadata"] = {"$ref": OBJECT_META}
            schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
            schema["$id"] = f"https://{group}/api/{kind.lower()}/{version['name']}"
            schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind"})
            name = f"{kind.lower()}-{group.split('.')[0]}-{version['name']}.json"
            (outdir / name).write_text(json.dumps(schema, indent=1, sort_keys=True))
            written.append(name)
    if not written:
        sys.exit(f"{crd_path}: no CustomResourceDefinition with a served version")
    print("converted", crd_path, "->", ", ".join(written))


# ---------------------------------------------------------------- schemas

def schema_file_name(obj):
    """kubernetes-validate's naming: apps/v1 Deployment -> deployment-apps-v1.json."""
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", obj["apiVersion"])
    return f"{obj['kind'].lower()}-{api}.json"


class Schemas:
    """The strict schemas of one Kubernetes version, plus the CRD schemas."""

    def __init__(self, version, crd_dir):
        root = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
        self.version = version
        self.dir = root / f"v{version}.0-local-strict"
        if not self.dir.is_dir():
            have = sorted(p.name for p in root.iterdir() if p.name.endswith("-local-strict"))
            sys.exit(f"kubernetes-validate has no schemas for Kubernetes {version} (has: {have})")
        defs = json.loads((self.dir / "_definitions.json").read_text())
        self.registry = Resource.from_contents(defs) @ Registry()
        self.crd_dir = pathlib.Path(crd_dir) if crd_dir else None
        self.validators = {}

    def validator(self, obj):
        name = schema_file_name(obj)
        if name not in self.validators:
            path = self.dir / name
            if self.crd_dir and (self.crd_dir / name).is_file():
                path = self.crd_dir / name  # a custom resource: its CRD decides
            self.validators[name] = None
            if path.is_file():
                schema = json.loads(path.read_text())
                self.validators[name] = jsonschema.Draft202012Validator(
                    schema, registry=self.registry)
        return self.validators[name]


def error_text(err):
    where = ".".join(str(p) for p in err.absolute_path) or "(top)"
    best = jsonschema.exceptions.best_match([err])
    return f"{where}: {best.message}"


# ---------------------------------------------------------------- cross-checks

def pod_specs(obj):
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        yield spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    elif obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        yield spec.get("template", {}).get("spec", {})


def cross_check(objs):
    """Problems that schemas cannot see, as (object, message) pairs."""
    problems = []
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    configmaps = by_kind.get("ConfigMap", {})
    secrets = set(by_kind.get("Secret", {})) | SECRET_TEMPLATE_NAMES
    deployments = by_kind.get("Deployment", {})

    for o in objs:
        for pod in pod_specs(o):
            containers = pod.get("containers", []) + pod.get("initContainers", [])
            for vol in pod.get("volumes", []):
                if "configMap" in vol and vol["configMap"]["name"] not in configmaps:
                    problems.append((o, f"volume {vol['name']}: no ConfigMap "
                                        f"'{vol['configMap']['name']}' in this build"))
            for c in containers:
                for src in c.get("envFrom", []):
                    if "configMapRef" in src and src["configMapRef"]["name"] not in configmaps:
                        problems.append((o, f"container {c['name']}: no ConfigMap "
                                            f"'{src['configMapRef']['name']}' in this build"))
                    if "secretRef" in src and src["secretRef"]["name"] not in secrets:
                        problems.append((o, f"container {c['name']}: no Secret "
                                            f"'{src['secretRef']['name']}' here or as a template"))
                for env in c.get("env", []):
                    ref = env.get("valueFrom", {}).get("configMapKeyRef")
                    if ref and ref["key"] not in configmaps.get(ref["name"], {}).get("data", {}):
                        problems.append((o, f"env {env['name']}: no key '{ref['key']}' in "
                                            f"ConfigMap '{ref['name']}'"))
                ports = {p.get("name") for p in c.get("ports", [])}
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    port = c.get(probe, {}).get("httpGet", {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        problems.append((o, f"container {c['name']}: {probe} port '{port}' "
                                            "is not a named port of the container"))

    # Workers: both probes, and a grace period that covers the drain.
    for d in deployments.values():
        pod = d["spec"]["template"]["spec"]
        for c in pod["containers"]:
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    problems.append((d, f"container {c['name']} has no {probe}"))
            drain = None
            for src in c.get("envFrom", []):
                cm = configmaps.get(src.get("configMapRef", {}).get("name"), {})
                drain = cm.get("data", {}).get("ACTIONPOOL_DRAIN_TIMEOUT_S", drain)
            grace = pod.get("terminationGracePeriodSeconds", 30)
            if drain is not None and grace < int(drain) + 5:
                problems.append((d, f"terminationGracePeriodSeconds {grace} leaves less than 5 s "
                                    f"over ACTIONPOOL_DRAIN_TIMEOUT_S {drain}"))

    # Autoscalers: each names a Deployment of this build, one autoscaler per Deployment.
    scaled = {}
    for kind in ("ScaledObject", "HorizontalPodAutoscaler"):
        for o in by_kind.get(kind, {}).values():
            target = o["spec"]["scaleTargetRef"]["name"]
            if target not in deployments:
                problems.append((o, f"scaleTargetRef: no Deployment '{target}' in this build"))
                continue
            if target in scaled:
                problems.append((o, f"Deployment '{target}' is also scaled by {scaled[target]}"))
            scaled[target] = f"{kind}/{o['metadata']['name']}"
            if kind != "ScaledObject":
                continue
            # *FromEnv names are read from the target container's environment.
            env = set()
            for c in deployments[target]["spec"]["template"]["spec"]["containers"]:
                env |= {e["name"] for e in c.get("env", [])}
                for src in c.get("envFrom", []):
                    env |= set(configmaps.get(src.get("configMapRef", {}).get("name"), {})
                               .get("data", {}))
            for t in o["spec"].get("triggers", []):
                for key, value in t.get("metadata", {}).items():
                    if key.endswith("FromEnv") and value not in env:
                        problems.append((o, f"trigger {t['type']}: {key} '{value}' is not in "
                                            f"the environment of Deployment '{target}'"))

    # Disruption budgets select the pods of some Deployment.
    for pdb in by_kind.get("PodDisruptionBudget", {}).values():
        sel = pdb["spec"].get("selector", {}).get("matchLabels", {})
        if not any(sel.items() <= d["spec"]["template"]["metadata"].get("labels", {}).items()
                   for d in deployments.values()):
            problems.append((pdb, "selector matches the pods of no Deployment in this build"))
    return problems


# ---------------------------------------------------------------- runtime libraries

ESSENTIAL = {"libc6"}  # in every Debian image


def runtime_packages(dockerfile):
    """The packages `apt-get install` names in the Dockerfile's last stage."""
    text = re.sub(r"\\\n", " ", pathlib.Path(dockerfile).read_text())
    stage = re.split(r"(?m)^FROM\s", text)[-1]
    packages = set()
    for line in re.findall(r"(?m)^RUN\s(.*)$", stage):
        for command in re.split(r"&&|;", line):
            words = shlex.split(command, comments=True)
            if "apt-get" in words and "install" in words:
                rest = words[words.index("install") + 1:]
                packages |= {w for w in rest if not w.startswith("-") and "=" not in w}
    return packages


def package_of(soname, ldconfig_lines):
    """The Debian package that ships soname on this machine, or None."""
    for line in ldconfig_lines:
        m = re.match(r"\s*(\S+) \([^)]*\) => (\S+)", line)
        if not m or m.group(1) != soname:
            continue
        path = m.group(2)  # /lib or /usr/lib: dpkg knows one of them (merged /usr)
        for candidate in (path, str(pathlib.Path(path).resolve()), re.sub(r"^/usr", "", path),
                          "/usr" + path):
            res = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if res.returncode == 0:
                return res.stdout.split(":")[0]
    return None


def check_runtime_libs(report, dockerfile, binaries):
    installed = runtime_packages(dockerfile)
    ldconfig = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                              check=True).stdout.splitlines()
    needed, missing = set(), []
    for binary in binaries:
        out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                             check=True).stdout
        for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
            pkg = package_of(soname, ldconfig)
            if pkg is None:
                missing.append(f"{soname} (no package found on this machine)")
                continue
            needed.add(pkg)
            if pkg not in installed and pkg not in ESSENTIAL:
                missing.append(f"{soname} needs {pkg}")
    detail = ("; ".join(sorted(set(missing))) if missing else
              "(" + " ".join(sorted(needed - ESSENTIAL)) + ")")
    report.line(not missing, "dockerfile runtime libs", str(dockerfile), detail)


# ---------------------------------------------------------------- check

class Report:
    def __init__(self):
        self.passed = self.failed = 0

    def line(self, ok, what, name, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {what:<28} {name}" + (f"  {detail}" if detail else ""))


def load_objects(path):
    return [o for o in yaml.safe_load_all(open(path)) if o]


def check_objects(report, label, objs, schema_sets):
    for obj in objs:
        name = f"{obj.get('kind', '?')}/{obj.get('metadata', {}).get('name', '?')}"
        errors = []
        for schemas in schema_sets:
            validator = schemas.validator(obj)
            if validator is None:
                errors.append(f"kubernetes {schemas.version}: no schema for "
                              f"{obj.get('apiVersion')} {obj.get('kind')}")
                continue
            for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
                errors.append(f"kubernetes {schemas.version}: {error_text(err)}")
        versions = ", ".join(s.version for s in schema_sets)
        report.line(not errors, label, name, "; ".join(errors[:5]) or f"(kubernetes {versions})")


def check_compose(report, path, schema_path):
    schema = json.loads(pathlib.Path(schema_path).read_text())
    doc = yaml.safe_load(open(path))
    cls = jsonschema.validators.validator_for(schema)
    errors = [error_text(e) for e in cls(schema).iter_errors(doc)]
    services = doc.get("services", {}) if isinstance(doc, dict) else {}
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in deps if isinstance(deps, (list, dict)) else []:
            if dep not in services:
                errors.append(f"services.{name}.depends_on: no service '{dep}'")
    report.line(not errors, "compose", str(path), "; ".join(errors[:5]) or "(compose-spec schema)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert-crd")
    conv.add_argument("crd")
    conv.add_argument("outdir")
    chk = sub.add_parser("check")
    chk.add_argument("--k8s-versions", required=True)
    chk.add_argument("--crd-dir")
    chk.add_argument("--render", action="append", default=[], metavar="LABEL=FILE")
    chk.add_argument("--file", action="append", default=[])
    chk.add_argument("--compose")
    chk.add_argument("--compose-schema")
    libs = sub.add_parser("runtime-libs")
    libs.add_argument("dockerfile")
    libs.add_argument("binaries", nargs="+")
    args = ap.parse_args()

    if args.cmd == "convert-crd":
        convert_crd(args.crd, args.outdir)
        return 0
    if args.cmd == "runtime-libs":
        report = Report()
        check_runtime_libs(report, args.dockerfile, args.binaries)
        return 1 if report.failed else 0

    schema_sets = [Schemas(v.strip(), args.crd_dir) for v in args.k8s_versions.split(",")]
    report = Report()
    for path in args.file:
        objs = load_objects(path)
        SECRET_TEMPLATE_NAMES.update(o["metadata"]["name"] for o in objs if o["kind"] == "Secret")
        check_objects(report, path, objs, schema_sets)
    for spec in args.render:
        label, _, path = spec.partition("=")
        objs = load_objects(path)
        if not objs:
            report.line(False, label, "(render)", "kustomize produced no objects")
            continue
        check_objects(report, label, objs, schema_sets)
        problems = cross_check(objs)
        for obj, msg in problems:
            report.line(False, label, f"{obj['kind']}/{obj['metadata']['name']}", msg)
        if not problems:
            report.line(True, label, "(cross-checks)", "references, autoscalers, probes, grace")
    if args.compose:
        check_compose(report, args.compose, args.compose_schema)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
