"""Checks charts/kube-idp with Helm's own code (helm-python-sdk) and the Kubernetes schemas
(kubernetes-validate): lint, render for the default, seed, HA and TLS values, validate every
rendered object in strict mode, and assert what the objects say. Run by tests/chart.rs.

Each check prints `ok   NAME` or `FAIL NAME: why`; the last line is
`chart: N passed, M failed`, and the exit status is 1 when a check failed.
"""

from __future__ import annotations

import copy
import difflib
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

sys.dont_write_bytecode = True  # no __pycache__ in tests/ from the import below
import chart_render  # noqa: E402
from chart_render import CHART, ROOT, objects, render  # noqa: E402

#: Kubernetes versions every object is validated against: the one the binary's k8s-openapi is
#: built for, and the newest kubernetes-validate ships.
KUBE_VERSIONS = ["1.33.0", kubernetes_validate.utils.latest_version()]
#: Custom kinds kubernetes-validate has no schema for, validated against our CRD instead.
CRD_FILE = ROOT / "crds" / "users.iam.kubesphere.io.yaml"
CUSTOM_KINDS = {("iam.kubesphere.io/v1beta1", "User"): CRD_FILE}

SEED = helm.parse_set_string(
    "portal.hostname=172.31.17.16.nip.io,portal.https.port=30491,ingress.enabled=true,"
    "ingress.tls.enabled=true,ingress.ingressClassName=kubesphere-router-cluster"
)
HA = helm.values_from_yaml((CHART / "values-ha.yaml").read_text())
TLS = helm.parse_set_string("tls.enabled=true,tls.secretName=idp-cert,service.type=NodePort")
SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "seed": SEED,
    "ha": HA,
    "ha+seed": {**HA, **SEED, "ingress": {**HA["ingress"], **SEED["ingress"]}},
    "tls": TLS,
    "ingress-disabled": {**SEED, "ingress": {"enabled": False}},
}
SIGNING_SECRET = "kube-idp-signing-keys"

CHECKS: list[tuple[str, Callable[[], None]]] = []


def check(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Registers a check under `name`; a check passes unless it raises."""

    def register(fn: Callable[[], None]) -> Callable[[], None]:
        CHECKS.append((name, fn))
        return fn

    return register


# --- helpers -------------------------------------------------------------------------------


def of_kind(rendered: dict[str, str], kind: str) -> list[dict[str, Any]]:
    return [obj for _, obj in objects(rendered) if obj["kind"] == kind]


def one(rendered: dict[str, str], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in of_kind(rendered, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def server(rendered: dict[str, str]) -> dict[str, Any]:
    """The kube-idp Deployment."""
    return one(rendered, "Deployment", "kube-idp")


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def args(rendered: dict[str, str]) -> list[str]:
    return container(server(rendered))["args"]


def flag(arguments: list[str], name: str) -> str | None:
    """The value following `name` in `arguments`, or None when the flag is absent."""
    if name not in arguments:
        return None
    index = arguments.index(name)
    assert index + 1 < len(arguments), f"{name} has no value"
    return arguments[index + 1]


def refuses(values: dict[str, Any], message: str) -> None:
    """The render fails, naming the problem."""
    try:
        render(values)
    except helm.HelmError as error:
        assert message in str(error), f"render failed, but not with {message!r}: {error}"
        return
    raise AssertionError(f"rendered, but should have failed with {message!r}")


def crd_schema(path: Path) -> dict[str, Any]:
    """The CRD's OpenAPI v3 schema as strict JSON Schema: `nullable` allows null, objects with
    properties allow no others (what the API server's strict field validation does), and the
    root accepts apiVersion, kind and metadata."""
    crd = yaml.safe_load(path.read_text())
    (version,) = crd["spec"]["versions"]
    schema = to_json_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    schema["properties"].update(
        apiVersion={"const": f"{crd['spec']['group']}/{version['name']}"},
        kind={"const": crd["spec"]["names"]["kind"]},
        metadata={"type": "object", "required": ["name"]},
    )
    return schema


def to_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    if node.pop("nullable", False):
        node["type"] = [node["type"], "null"]
    for child in node.get("properties", {}).values():
        to_json_schema(child)
    if "items" in node:
        to_json_schema(node["items"])
    if "properties" in node and not node.pop("x-kubernetes-preserve-unknown-fields", False):
        node.setdefault("additionalProperties", False)
    return node


def validate(obj: dict[str, Any], where: str) -> None:
    """Validates one object against the Kubernetes schemas in strict mode, for every version in
    KUBE_VERSIONS. A kind without a Kubernetes schema must be one of CUSTOM_KINDS, and is then
    validated against that CRD's schema; any other unknown kind fails."""
    name = f"{where}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except SchemaNotFoundError as missing:
            custom = CUSTOM_KINDS.get((obj["apiVersion"], obj["kind"]))
            assert custom, f"{name}: {missing.message}, and it is not a known custom kind"
            try:
                jsonschema.validate(obj, crd_schema(custom))
            except jsonschema.ValidationError as error:
                raise AssertionError(f"{name} against {custom.name}: {error.message}") from None
        except ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            raise AssertionError(f"{name} against {version}: {path}: {error.message}") from None


def security_context_is_locked_down(pod: dict[str, Any], what: str) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True, f"{what}: pod may run as root"
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", what
    for each in pod["containers"]:
        sc = each["securityContext"]
        assert sc["runAsNonRoot"] is True, f"{what}/{each['name']}: may run as root"
        assert sc["readOnlyRootFilesystem"] is True, f"{what}/{each['name']}: writable root"
        assert sc["allowPrivilegeEscalation"] is False, f"{what}/{each['name']}: escalation"
        assert sc["capabilities"]["drop"] == ["ALL"], f"{what}/{each['name']}: capabilities"


def commented_keys_problems(path: Path) -> list[str]:
    """Keys in a values file with no comment: a key is covered by a comment line right above
    it, or by being inside a commented key's block."""
    problems = []
    stack: list[tuple[int, bool]] = []  # (indent, covered) of the open mapping keys
    previous = ""
    opened: tuple[int, str, bool] | None = None  # the last key without an inline value
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("- ") and opened and not opened[2]:
            problems.append(f"{path.name}:{opened[0]}: {opened[1]} has no comment")
        if stripped.startswith("- ") or (stripped and not stripped.startswith("#")):
            opened = None
        if not stripped or stripped.startswith("#") or stripped.startswith("- "):
            previous = stripped
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        covered = previous.startswith("#") or any(c for _, c in stack)
        key, _, value = stripped.partition(":")
        if value.strip() and not covered:
            problems.append(f"{path.name}:{number}: {key} has no comment")
        if not value.strip():
            opened = (number, key, covered)
        stack.append((indent, covered))
        previous = stripped
    return problems


# --- the chart as a whole ------------------------------------------------------------------


@check("the chart's CRD is byte for byte the top-level crds/ one")
def crd_copy_matches() -> None:
    copy_in_chart = CHART / "crds" / CRD_FILE.name
    assert copy_in_chart.read_bytes() == CRD_FILE.read_bytes(), (
        f"{copy_in_chart.relative_to(ROOT)} differs from {CRD_FILE.relative_to(ROOT)}: "
        "run `make crds`"
    )


@check("Helm finds the CRD in the chart's crds/ (installed only when absent)")
def helm_sees_crd() -> None:
    with helm.Chart.load(CHART) as chart:
        names = [yaml.safe_load(crd["data"])["metadata"]["name"] for crd in chart.crds]
    assert names == ["users.iam.kubesphere.io"], names


@check("the CRD itself validates against the Kubernetes schemas")
def crd_validates() -> None:
    validate(yaml.safe_load(CRD_FILE.read_text()), CRD_FILE.name)


@check("a custom User resource validates against the CRD, and a wrong one does not")
def users_validate_against_crd() -> None:
    example = ROOT / "deploy" / "examples" / "admin-user.yaml"
    (user,) = [doc for doc in yaml.safe_load_all(example.read_text()) if doc]
    validate(user, example.name)
    wrong = copy.deepcopy(user)
    wrong["spec"]["groups"] = "platform-admins"
    try:
        validate(wrong, "a User with groups as a string")
    except AssertionError:
        return
    raise AssertionError("a User with groups as a string validated")


@check("an unknown kind is reported, not skipped")
def unknown_kind_fails() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    try:
        validate(unknown, "unknown")
    except AssertionError as error:
        assert "not a known custom kind" in str(error), error
        return
    raise AssertionError("an unknown kind validated")


@check("every value in values.yaml and values-ha.yaml is commented")
def values_are_commented() -> None:
    problems = [
        problem
        for name in ("values.yaml", "values-ha.yaml")
        for problem in commented_keys_problems(CHART / name)
    ]
    assert not problems, "; ".join(problems)


def lint_clean(values: dict[str, Any], label: str) -> None:
    for version in KUBE_VERSIONS:
        report = helm.lint(CHART, values, strict=True, kube_version=f"v{version}")
        findings = [m for m in report["messages"] if m["severity"] >= 2]
        assert not report["errors"] and not findings, f"{label} on {version}: {report}"


for label in ("default", "seed", "ha", "tls"):
    check(f"helm lint --strict is clean with the {label} values")(
        lambda label=label: lint_clean(SCENARIOS[label], label)
    )


def renders_valid(label: str) -> None:
    rendered = render(SCENARIOS[label])
    assert rendered, "nothing rendered"
    for where, obj in objects(rendered):
        validate(obj, where)


for label in SCENARIOS:
    check(f"renders with the {label} values, every object valid in strict mode")(
        lambda label=label: renders_valid(label)
    )


# --- what the objects say ------------------------------------------------------------------


@check("the seed's portal flags make the issuer https://172.31.17.16.nip.io:30491")
def seed_issuer() -> None:
    arguments = args(render(SEED))
    assert flag(arguments, "--issuer") == "https://172.31.17.16.nip.io:30491", arguments


@check("port 443 is left out of the issuer; `issuer` overrides it, and the Ingress follows")
def issuer_port_443_and_override() -> None:
    plain = helm.parse_set_string("portal.hostname=idp.corp.test,portal.https.port=443")
    assert flag(args(render(plain)), "--issuer") == "https://idp.corp.test"
    override = {**plain, "issuer": "https://corp.test/idp/", "ingress": {"enabled": True}}
    rendered = render(override)
    assert flag(args(rendered), "--issuer") == "https://corp.test/idp"
    (rule,) = one(rendered, "Ingress")["spec"]["rules"]
    assert rule["host"] == "corp.test" and rule["http"]["paths"][0]["path"] == "/idp", rule


@check("the container runs `kube-idp serve` with the contract's flags")
def serve_flags() -> None:
    arguments = args(render())
    assert arguments[:2] == ["serve", "--kubernetes"], arguments
    assert flag(arguments, "--namespace") == "kubesphere-system", arguments
    assert flag(arguments, "--listen") == "0.0.0.0:8080", arguments
    assert flag(arguments, "--keys-secret") == SIGNING_SECRET, arguments
    assert flag(arguments, "--log-format") == "text", arguments
    assert flag(arguments, "--metrics-listen") == "0.0.0.0:9090", arguments
    for absent in ("--redis", "--tls-cert", "--tls-key", "--trusted-proxies"):
        assert absent not in arguments, f"{absent} without its value set: {arguments}"
    assert container(server(render()))["command"] == ["/usr/local/bin/kube-idp"]


@check("logFormat, trustedProxies, clients.namespace and signingKeys reach the flags")
def settings_reach_flags() -> None:
    values = {
        "logFormat": "json",
        "trustedProxies": ["10.244.0.0/16", "fd00::/8"],
        "clients": {"namespace": "idp-clients"},
        "signingKeys": {"secretName": "idp-keys"},
    }
    rendered = render(values)
    arguments = args(rendered)
    assert flag(arguments, "--log-format") == "json", arguments
    assert flag(arguments, "--trusted-proxies") == "10.244.0.0/16,fd00::/8", arguments
    assert flag(arguments, "--namespace") == "idp-clients", arguments
    assert flag(arguments, "--keys-secret") == "idp-keys", arguments
    roles = [r for r in of_kind(rendered, "Role") if r["metadata"]["namespace"] == "idp-clients"]
    assert len(roles) == 1, roles
    named = [rule for rule in roles[0]["rules"] if rule.get("resourceNames")]
    assert named and all(rule["resourceNames"] == ["idp-keys"] for rule in named), named


@check("the seed's Ingress has the class, the host and TLS for the host")
def seed_ingress() -> None:
    ingress = one(render(SEED), "Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "kubesphere-router-cluster", spec
    assert spec["tls"] == [{"hosts": ["172.31.17.16.nip.io"], "secretName": "kube-idp-tls"}]
    (rule,) = spec["rules"]
    assert rule["host"] == "172.31.17.16.nip.io", rule
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "kube-idp", "port": {"name": "http"}}, backend


@check("ingress disabled renders no Ingress")
def no_ingress() -> None:
    assert not of_kind(render(SCENARIOS["ingress-disabled"]), "Ingress")
    assert not of_kind(render(), "Ingress")


@check("the HA values: 3 replicas, a PDB of 2, --redis to a fenced bundled Redis, anti-affinity")
def ha_render() -> None:
    rendered = render(HA)
    deployment = server(rendered)
    assert deployment["spec"]["replicas"] == 3, deployment["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = one(rendered, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2, pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(), pdb
    assert flag(args(rendered), "--redis") == "redis://kube-idp-redis:6379", args(rendered)
    redis = one(rendered, "Deployment", "kube-idp-redis")
    assert container(redis)["image"] == "redis:7-alpine", container(redis)
    service = one(rendered, "Service", "kube-idp-redis")
    redis_labels = redis["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= redis_labels.items(), service
    assert not service["spec"]["selector"].items() <= pod_labels.items(), "selects kube-idp"
    assert service["spec"]["ports"][0]["port"] == 6379
    policy = one(rendered, "NetworkPolicy", "kube-idp-redis")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= redis_labels.items(), policy
    (allowed,) = policy["ingress"]
    kube_idp_pods = {"podSelector": {"matchLabels": pdb["spec"]["selector"]["matchLabels"]}}
    assert allowed["from"] == [kube_idp_pods], allowed
    affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    selector = term["podAffinityTerm"]["labelSelector"]["matchLabels"]
    assert selector.items() <= pod_labels.items(), term
    assert one(rendered, "Ingress")["spec"]["tls"], "HA Ingress without TLS"


@check("one replica has no PDB unless asked; more than one without Redis refuses to render")
def pdb_and_replicas() -> None:
    assert not of_kind(render(), "PodDisruptionBudget")
    asked = render({"podDisruptionBudget": {"enabled": True}})
    assert one(asked, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    refuses({"replicaCount": 2}, "replicaCount > 1 needs a shared state store")
    external = render({"replicaCount": 2, "redis": {"url": "redis://redis.idp.svc:6379"}})
    assert flag(args(external), "--redis") == "redis://redis.idp.svc:6379"
    assert one(external, "PodDisruptionBudget")
    assert not [d for d in of_kind(external, "Deployment") if "redis" in d["metadata"]["name"]]


@check("redis.existingSecret feeds KUBE_IDP_REDIS from the Secret, not the command line")
def redis_from_secret() -> None:
    rendered = render({"replicaCount": 2, "redis": {"existingSecret": "idp-redis"}})
    assert "--redis" not in args(rendered), args(rendered)
    env = {e["name"]: e for e in container(server(rendered))["env"]}
    source = env["KUBE_IDP_REDIS"]["valueFrom"]["secretKeyRef"]
    assert source == {"name": "idp-redis", "key": "url"}, source


@check("tls.enabled serves HTTPS from the mounted Secret, probes over HTTPS, Service on 443")
def tls_direct() -> None:
    rendered = render(TLS)
    deployment = server(rendered)
    each = container(deployment)
    arguments = each["args"]
    assert flag(arguments, "--tls-cert") == "/etc/kube-idp/tls/tls.crt", arguments
    assert flag(arguments, "--tls-key") == "/etc/kube-idp/tls/tls.key", arguments
    mounts = {m["name"]: m for m in each["volumeMounts"]}
    assert mounts["tls"]["mountPath"] == "/etc/kube-idp/tls" and mounts["tls"]["readOnly"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "idp-cert", volumes
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert each[probe]["httpGet"]["scheme"] == "HTTPS", (probe, each[probe])
    (port,) = one(rendered, "Service")["spec"]["ports"]
    assert port["port"] == 443 and port["name"] == "https", port
    assert port["targetPort"] == "http", port
    without = render()
    assert "--tls-cert" not in args(without)
    assert container(server(without))["livenessProbe"]["httpGet"]["scheme"] == "HTTP"


@check("probes: liveness /healthz, readiness /readyz, on port 8080 named http")
def probes() -> None:
    deployment = server(render())
    each = container(deployment)
    assert each["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ], each["ports"]
    assert each["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert each["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert each["livenessProbe"]["httpGet"]["port"] == "http"
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30


@check("every pod runs as non-root with a read-only root, no capabilities, seccomp")
def security_contexts() -> None:
    for label in ("default", "ha", "tls"):
        for deployment in of_kind(render(SCENARIOS[label]), "Deployment"):
            pod = deployment["spec"]["template"]["spec"]
            security_context_is_locked_down(pod, f"{label}/{deployment['metadata']['name']}")
    pod = server(render())["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532, pod["securityContext"]
    assert container(server(render()))["securityContext"]["runAsUser"] == 65532


@check("the Service carries the Prometheus annotations for /metrics")
def prometheus_annotations() -> None:
    annotations = one(render(), "Service")["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true", annotations
    assert annotations["prometheus.io/path"] == "/metrics", annotations
    assert annotations["prometheus.io/port"] == "9090", annotations
    tls_annotations = one(render(TLS), "Service")["metadata"]["annotations"]
    assert tls_annotations["prometheus.io/scheme"] == "http", "metrics stay plain HTTP"
    plain = one(render({"metrics": {"prometheusAnnotations": False}}), "Service")
    assert "annotations" not in plain["metadata"], plain["metadata"]


@check("RBAC grants no `*`, no cluster-wide Secrets, and writes only the signing-key Secret")
def rbac_least_privilege() -> None:
    rendered = render(HA)
    roles = of_kind(rendered, "ClusterRole") + of_kind(rendered, "Role")
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{role['metadata']['name']}: {rule}"
            if "secrets" not in rule["resources"]:
                continue
            assert role["kind"] == "Role", f"cluster-wide Secrets: {rule}"
            assert role["metadata"]["namespace"] == "kubesphere-system", role["metadata"]
            assert "delete" not in rule["verbs"] and "deletecollection" not in rule["verbs"]
            if {"update", "patch"} & set(rule["verbs"]):
                assert rule.get("resourceNames") == [SIGNING_SECRET], rule
    (cluster_role,) = of_kind(rendered, "ClusterRole")
    verbs = {r: set(rule["verbs"]) for rule in cluster_role["rules"] for r in rule["resources"]}
    assert verbs == {"users": {"get", "list", "watch", "patch"}, "users/status": {"patch"}}
    for binding in of_kind(rendered, "ClusterRoleBinding") + of_kind(rendered, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "kube-idp", "namespace": "kube-idp"}
        ], binding
    event_roles = [r for r in roles if any("events" in rule["resources"] for rule in r["rules"])]
    assert sorted(r["metadata"]["namespace"] for r in event_roles) == [
        "default",
        "kubesphere-system",
    ]


@check("bad settings refuse to render, naming the problem")
def bad_settings() -> None:
    refuses({"logFormat": "xml"}, "logFormat must be text or json")
    refuses({"redis": {"enabled": True, "url": "redis://x:6379"}}, "redis.enabled runs a bundled")
    ip_host = helm.parse_set_string("portal.hostname=172.31.17.16,ingress.enabled=true")
    refuses(ip_host, "an Ingress host must be a DNS name")
    refuses({"podAntiAffinity": "sometimes"}, "podAntiAffinity must be soft, hard or empty")


@check("NOTES.txt names the issuer, warns on the example hostname and on an untrusted ingress")
def notes_text() -> None:
    seed = chart_render.notes(SEED)
    assert "https://172.31.17.16.nip.io:30491" in seed
    assert "WARNING: ingress.enabled without trustedProxies" in seed, seed
    trusted = chart_render.notes({**SEED, "trustedProxies": ["10.244.0.0/16"]})
    assert "WARNING" not in trusted, trusted
    assert "WARNING: portal.hostname is still the example" in chart_render.notes()


@check("deploy/kube-idp.yaml and deploy/rbac.yaml are the chart's current render")
def plain_manifests_match() -> None:
    drifted = []
    for path, wanted in chart_render.generated_files().items():
        have = path.read_text() if path.exists() else ""
        if have != wanted:
            diff = difflib.unified_diff(
                have.splitlines(), wanted.splitlines(), "committed", "rendered", lineterm=""
            )
            drifted.append(f"{path.relative_to(ROOT)}:\n" + "\n".join(list(diff)[:40]))
    assert not drifted, "run `make chart`\n" + "\n".join(drifted)


@check("every object in deploy/ validates in strict mode")
def plain_manifests_validate() -> None:
    for name in ("kube-idp.yaml", "rbac.yaml"):
        path = ROOT / "deploy" / name
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        assert docs, f"{name} is empty"
        for doc in docs:
            validate(doc, name)


def main() -> int:
    print(f"helm-c {helm.helm_c_version()}, Helm SDK {helm.helm_sdk_version()}; "
          f"Kubernetes schemas {', '.join(KUBE_VERSIONS)}")
    failed = 0
    for name, fn in CHECKS:
        try:
            fn()
        except Exception as error:  # a check's failure of any kind is reported, then counted
            failed += 1
            detail = str(error) if isinstance(error, AssertionError) else traceback.format_exc()
            print(f"FAIL {name}: {detail}")
        else:
            print(f"ok   {name}")
    print(f"chart: {len(CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
