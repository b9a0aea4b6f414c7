"""The deployment files, checked as far as this machine can: no image is built and no
cluster runs here, so the Dockerfile and the Kubernetes manifests are read and their
parts checked against each other — and every lanthorn command line in them against
lanthorn's own parser (`cli.config_from_args`: parsed and validated, nothing started).
The systemd units also go through `systemd-analyze verify`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from lanthorn import cli
from lanthorn.config import Config

REPO = Path(__file__).resolve().parents[2]
SITE = "/srv/www"  # where the image and the units serve from: www/ in the image


def lanthorn(args: Sequence[str]) -> Config:
    """The Config `lanthorn ARGS` would serve with (the site root read as www/)."""
    local = [str(REPO / "www") if arg == SITE else arg for arg in args]
    return cli.config_from_args(local)


def option(args: Sequence[str], name: str) -> str:
    return args[list(args).index(name) + 1]


def metrics_port(args: Sequence[str]) -> int:
    return int(option(args, "--metrics").rpartition(":")[2])


# Dockerfile ------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) for each instruction, continuation lines joined."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _one(instruction: str) -> str:
    values = [rest for word, rest in _instructions() if word == instruction]
    assert values, f"no {instruction} in the Dockerfile"
    return values[-1]  # the one in force


def _exec_form(text: str) -> list[str]:
    value = json.loads(text)  # the exec form: no shell between Docker and the process
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


def test_image_base_and_install() -> None:
    """A build stage compiles the hot path into a wheel (docs/development.md); the image
    installs that wheel, without its extras and without a compiler of its own."""
    stages = [rest for word, rest in _instructions() if word == "FROM"]
    assert stages == ["python:3.11-slim AS build", "python:3.11-slim"], stages
    runs = [rest for word, rest in _instructions() if word == "RUN"]
    assert any(
        re.search(r"\bpip install .*/tmp/lanthorn\b(?!\[)", run)
        and "LANTHORN_COMPILE=1 pip wheel --no-build-isolation --no-deps -w /wheels" in run
        for run in runs
    ), runs
    assert "--from=build /wheels /tmp/wheels" in [
        rest for word, rest in _instructions() if word == "COPY"
    ]
    assert any(re.search(r"\bpip install /tmp/wheels/\*\.whl", run) for run in runs), runs


def test_image_runs_as_a_numeric_non_root_user() -> None:
    user = _one("USER").split(":")[0]
    assert user.isdigit() and int(user) != 0, user  # numeric: runAsNonRoot can check it
    words = [word for word, _ in _instructions()]
    assert len(words) - words[::-1].index("USER") > len(words) - words[::-1].index("RUN")
    assert any(f"--uid {user}" in rest for word, rest in _instructions() if word == "RUN")


def test_image_command_parses() -> None:
    assert _exec_form(_one("ENTRYPOINT")) == ["lanthorn"]
    args = _exec_form(_one("CMD"))
    config = lanthorn(args)
    assert args[0] == SITE
    assert config.server.host == "0.0.0.0"  # reachable through the published port
    exposed = {int(port.split("/")[0]) for port in _one("EXPOSE").split()}
    assert {config.server.port, metrics_port(args)} <= exposed
    assert _one("STOPSIGNAL") == "SIGTERM"


def test_image_healthcheck_asks_the_metrics_port() -> None:
    options, _, command = _one("HEALTHCHECK").partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = _exec_form(command)
    assert argv[:2] == ["python", "-c"], argv
    compile(argv[2], "HEALTHCHECK", "exec")  # a Python one-liner that compiles
    url = re.fullmatch(r".*urlopen\('http://127\.0\.0\.1:(\d+)/healthz'.*", argv[2])
    assert url, argv[2]
    assert int(url[1]) == metrics_port(_exec_form(_one("CMD")))


def test_image_context_holds_what_is_copied() -> None:
    """.dockerignore leaves out everything but what COPY takes, which exists."""
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    kept = {rule[1:] for rule in rules if rule.startswith("!")}
    sources = [
        source
        for word, rest in _instructions()
        if word == "COPY" and not rest.startswith("--from=")  # (from a stage, not the context)
        for source in rest.split()[:-1]
    ]
    assert set(sources) == kept
    assert all((REPO / source).exists() for source in sources)
    assert f"www {SITE}" in [rest for word, rest in _instructions() if word == "COPY"]


# Kubernetes ------------------------------------------------------------------------------


def _manifests() -> dict[str, dict[str, Any]]:
    """The documents of deploy/k8s by kind (one of each)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((REPO / "deploy" / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert document["kind"] not in found, f"a second {document['kind']} in {path}"
            found[document["kind"]] = document
    return found


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    return _manifests()


def _container(k8s: dict[str, dict[str, Any]]) -> dict[str, Any]:
    containers = k8s["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port (a name or a number) as the container's number."""
    numbers = {p["name"]: p["containerPort"] for p in container["ports"]}
    return numbers[port] if isinstance(port, str) else port


def test_k8s_kustomization_lists_every_manifest(k8s: dict[str, dict[str, Any]]) -> None:
    files = {p.name for p in (REPO / "deploy" / "k8s").glob("*.yaml")}
    assert set(k8s["Kustomization"]["resources"]) == files - {"kustomization.yaml"}


def test_k8s_args_parse_and_match_the_image(k8s: dict[str, dict[str, Any]]) -> None:
    args = _container(k8s)["args"]
    config = lanthorn(args)
    assert config.server.workers == 1  # the autoscaler adds pods, not workers
    assert config.server.host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in _container(k8s)["ports"]}
    assert ports == {"http": config.server.port, "metrics": metrics_port(args)}
    assert args[0] == SITE == _exec_form(_one("CMD"))[0]


def test_k8s_probes_ask_the_metrics_port(k8s: dict[str, dict[str, Any]]) -> None:
    container = _container(k8s)
    metrics = metrics_port(container["args"])
    ready, alive = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert (ready["path"], _port(container, ready["port"])) == ("/readyz", metrics)
    assert (alive["path"], _port(container, alive["port"])) == ("/healthz", metrics)
    annotations = k8s["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == metrics


def test_k8s_stopping_outlasts_the_drain(k8s: dict[str, dict[str, Any]]) -> None:
    """The kubelet's SIGKILL comes after the preStop wait and lanthorn's --grace."""
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    container = _container(k8s)
    grace = lanthorn(container["args"]).limits.grace_s
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, command  # python:slim has sleep
    assert pod["terminationGracePeriodSeconds"] > int(command[1]) + grace


def test_k8s_selectors_match_labels(k8s: dict[str, dict[str, Any]]) -> None:
    deployment = k8s["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        k8s["Service"]["spec"]["selector"],
        k8s["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector and selector.items() <= labels.items(), selector
    target = k8s["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert target == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }


def test_k8s_service_reaches_the_http_port(k8s: dict[str, dict[str, Any]]) -> None:
    container = _container(k8s)
    (port,) = k8s["Service"]["spec"]["ports"]
    assert _port(container, port["targetPort"]) == lanthorn(container["args"]).server.port


def test_k8s_autoscaler_on_cpu(k8s: dict[str, dict[str, Any]]) -> None:
    hpa = k8s["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["minReplicas"] == k8s["Deployment"]["spec"]["replicas"] == 2
    assert spec["maxReplicas"] > spec["minReplicas"]
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # Utilization is a share of the request: there must be one.
    assert "cpu" in _container(k8s)["resources"]["requests"]
    assert k8s["PodDisruptionBudget"]["spec"]["minAvailable"] < spec["minReplicas"]


def test_k8s_pod_is_locked_down(k8s: dict[str, dict[str, Any]]) -> None:
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    container = _container(k8s)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == _one("USER").split(":")[0]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}


# systemd ---------------------------------------------------------------------------------

SYSTEMD = REPO / "deploy" / "systemd"


def _unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """Section → (key, value) lines, in order (a key may repeat, as ListenStream=)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    section: list[tuple[str, str]] = []
    for line in (SYSTEMD / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = sections.setdefault(line[1:-1], [])
        elif line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            section.append((key, value))
    return sections


def _value(lines: list[tuple[str, str]], key: str) -> str:
    values = [value for k, value in lines if k == key]
    assert len(values) == 1, (key, values)
    return values[0]


def test_systemd_service_command_parses() -> None:
    service = _unit("lanthorn.service")["Service"]
    program, *args = _value(service, "ExecStart").split()
    assert program.endswith("/bin/lanthorn")
    config = lanthorn(args)
    # The sockets come from lanthorn.socket: options that bind would say otherwise.
    assert "--host" not in args and "--port" not in args and "-p" not in args
    assert _value(service, "Type") == "notify"  # READY=1 (engines/notify)
    assert float(_value(service, "TimeoutStopSec")) > config.limits.grace_s
    assert _value(service, "KillMode") == "mixed"  # SIGTERM to the supervisor only
    assert _value(service, "ExecReload") == "/bin/kill -HUP $MAINPID"


def test_systemd_service_is_hardened() -> None:
    service = dict(_unit("lanthorn.service")["Service"])
    for key, value in {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    # AF_UNIX: sd_notify, and the workers' HTTP/3 mesh (socketpair).
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}


def test_systemd_socket_goes_with_the_service() -> None:
    socket_unit = _unit("lanthorn.socket")
    assert [v for k, v in socket_unit["Socket"] if k == "ListenStream"] == ["8080"]
    unit = _unit("lanthorn.service")["Unit"]
    assert _value(unit, "Requires") == "lanthorn.socket"
    assert "lanthorn.socket" in _value(unit, "After").split()


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own check, with ExecStart pointed at this checkout's lanthorn (it
    requires the program to exist); warnings count as failures."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: `make test` installs it (systemd)"
    installed = Path(sys.executable).parent / "lanthorn"
    for name in ("lanthorn.service", "lanthorn.socket"):
        text = (SYSTEMD / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("/opt/lanthorn/bin/lanthorn", str(installed)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", "lanthorn.socket", "lanthorn.service"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
