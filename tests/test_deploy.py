"""The deployment files stay true to the code.

docker-compose.yml, deploy/Dockerfile and every manifest under deploy/k8s are checked against
the service registry (``verzuimhub.services``), the settings classes and the CLI parser:
every command must parse, every environment variable must be a real setting of the service
the container runs (with a value the settings class accepts), ports, health checks, URLs
between services, mounted files and migrations must line up. Nothing is listed twice: the
names, prefixes, fields and ports come from the code, so renaming a setting or a service
without updating the deployment fails here, with the file and container in the message.

No Docker or Kubernetes is needed: the files are parsed, not run.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import os
import re
import shlex
import tomllib
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest

from verzuimhub import cli
from verzuimhub.services import DATABASE_SERVICES, ServiceEntry, services
from verzuimhub_shared import devkeys
from verzuimhub_shared.settings import DEV_SECRET_MARKER, ServiceSettings

# PyYAML: installed today only through uvicorn[standard]; it belongs in the dev group. Loaded
# by name so that mypy needs no types-PyYAML stubs (and no ignore that turns stale).
yaml: Any = importlib.import_module("yaml")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S_DIR = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INIT_SQL = ROOT / "deploy" / "postgres" / "init.sql"

#: The memory target of one service process (limits must stay within it).
MEMORY_TARGET_BYTES = 300 * 1024 * 1024
#: Registry services that Kubernetes need not run: mock DUO stands in for DUO in development.
K8S_OPTIONAL = frozenset({"mock-duo"})
#: Addresses a health check inside the container itself may use.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Bind addresses that make the HTTP server reachable from outside its container.
ALL_INTERFACES = frozenset({"0.0.0.0", "::"})
POSTGRES_ASYNC_SCHEME = "postgresql+asyncpg"


# --- the code's view ---------------------------------------------------------------------


def _setting_names(entry: ServiceEntry) -> dict[str, str]:
    """Environment variable -> settings field, for one service."""
    fields = _model_fields(entry)
    return {f"{entry.env_prefix}{name.upper()}": name for name in fields}


def _model_fields(entry: ServiceEntry) -> dict[str, Any]:
    cls: Any = entry.settings_cls
    fields: dict[str, Any] = cls.model_fields
    return fields


def _is_path_field(annotation: Any) -> bool:
    if annotation is Path:
        return True
    return any(_is_path_field(arg) for arg in typing.get_args(annotation))


@cache
def _served_health_paths(name: str) -> frozenset[str]:
    """The /health/... paths the app factory really serves for this service."""
    entry = services()[name]
    app = entry.create_app(entry.settings())
    paths = {getattr(route, "path", "") for route in app.routes}
    return frozenset(p for p in paths if p.startswith("/health/"))


@cache
def _console_script() -> str:
    """The console script of the root pyproject that runs ``verzuimhub.cli.main``."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for script, target in pyproject["project"]["scripts"].items():
        module, _, attr = target.partition(":")
        if getattr(importlib.import_module(module), attr, None) is cli.main:
            return str(script)
    raise AssertionError("root pyproject.toml declares no console script for verzuimhub.cli:main")


def _parse_cli(where: str, args: list[str]) -> argparse.Namespace:
    try:
        return cli._parser().parse_args(args)
    except SystemExit:
        pass  # argparse printed why; fail outside the handler to keep the report short
    pytest.fail(
        f"{where}: `{_console_script()} {shlex.join(args)}` is not a valid command of "
        "the CLI (verzuimhub.cli._parser); see the argparse error printed above"
    )


# --- a container, whichever file it comes from -------------------------------------------


@dataclass
class Container:
    """One container that runs the Verzuimhub image."""

    where: str
    runs: list[argparse.Namespace]
    env: dict[str, str]
    ports: list[int] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    #: Named container ports (Kubernetes), for probes and Service targetPorts.
    port_names: dict[str, int] = field(default_factory=dict)
    #: (kind, path, port); kind is "healthcheck" (compose) or the k8s probe name.
    health: list[tuple[str, str, int | None]] = field(default_factory=list)
    memory_limit: str | None = None
    #: Files written by this container's own script (shell redirections, dev keys).
    produces: set[str] = field(default_factory=set)

    def served(self) -> str | None:
        """The registry service this container serves (``serve <name>``), if any."""
        for run in self.runs:
            if run.command == "serve":
                return str(run.service)
        return None

    def migrated(self) -> tuple[str, ...]:
        names: list[str] = []
        for run in self.runs:
            if run.command == "migrate":
                names.extend(DATABASE_SERVICES if run.service == "all" else [run.service])
        return tuple(names)

    def configured(self) -> tuple[str, ...]:
        """The services whose settings this container reads."""
        served = self.served()
        return (served, *self.migrated()) if served else self.migrated()

    def cli_port(self) -> int | None:
        for run in self.runs:
            if run.command == "serve" and run.port:
                return int(run.port)
        return None

    def cli_host(self) -> str | None:
        for run in self.runs:
            if run.command == "serve" and run.host:
                return str(run.host)
        return None


def _runs_from_argv(where: str, argv: list[str]) -> list[argparse.Namespace]:
    script = _console_script()
    if not argv or argv[0] != script:
        pytest.fail(f"{where}: runs {argv!r}; every container must run the `{script}` command")
    return [_parse_cli(where, argv[1:])]


_SHELL_SEPARATORS = re.compile(r"&&|\|\||;|\n|\|")
_REDIRECTS = (">", ">>", "1>", "2>", "<")


def _runs_from_script(where: str, script: str) -> tuple[list[argparse.Namespace], set[str]]:
    """Every `verzuimhub …` invocation of a shell script, and the files the script writes."""
    runs: list[argparse.Namespace] = []
    produces: set[str] = set()
    for part in _SHELL_SEPARATORS.split(script):
        words = shlex.split(part, comments=True)
        argv: list[str] = []
        i = 0
        while i < len(words):
            if words[i] in _REDIRECTS:
                if words[i] != "<" and i + 1 < len(words):
                    produces.add(words[i + 1])
                i += 2
                continue
            argv.append(words[i])
            i += 1
        if argv and argv[0] == _console_script():
            run = _parse_cli(where, argv[1:])
            runs.append(run)
            if run.command == "token":
                produces.add(str(PurePosixPath(run.data_dir) / "keys" / devkeys.PUBLIC_NAME))
    if not runs:
        pytest.fail(f"{where}: its shell script runs no `{_console_script()}` command")
    return runs, produces


def _runs(
    where: str, entrypoint: list[str], command: list[str]
) -> tuple[list[argparse.Namespace], set[str]]:
    """The CLI invocations of an entrypoint + command pair, and the files a script writes."""
    argv = [*entrypoint, *command]
    if argv and PurePosixPath(argv[0]).name in ("sh", "bash", "dash"):
        flags = [a for a in argv[1:] if a.startswith("-")]
        if not any("c" in f for f in flags) or len(argv) <= len(flags) + 1:
            pytest.fail(f"{where}: a shell entrypoint must run a script with -c")
        return _runs_from_script(where, argv[len(flags) + 1])
    return _runs_from_argv(where, argv), set()


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


# --- docker-compose.yml -------------------------------------------------------------------


@cache
def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return doc


def _compose_image() -> str:
    built = [s for s in _compose()["services"].values() if "build" in s]
    assert built, "docker-compose.yml: no service builds the Verzuimhub image (deploy/Dockerfile)"
    images = {s.get("image") for s in built}
    assert len(images) == 1, f"docker-compose.yml: the built services name {images} as image"
    return str(images.pop())


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    assert "env_file" not in service, "env_file is not checked by tests/test_deploy.py"
    return {str(k): _yaml_scalar(v) for k, v in env.items()}


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _is_app(service: dict[str, Any]) -> bool:
    return "build" in service or service.get("image") == _compose_image()


@cache
def _compose_containers() -> dict[str, Container]:
    containers: dict[str, Container] = {}
    for name, svc in _compose()["services"].items():
        if not _is_app(svc):
            continue
        where = f"docker-compose.yml service {name!r}"
        entrypoint = _as_list(svc.get("entrypoint")) or [_console_script()]
        runs, produces = _runs(where, entrypoint, _as_list(svc.get("command")))
        ports = []
        for spec in svc.get("ports", []):
            target = spec.get("target") if isinstance(spec, dict) else str(spec).split(":")[-1]
            ports.append(int(str(target).split("/")[0]))
        health = []
        test = (svc.get("healthcheck") or {}).get("test") or []
        for url in re.findall(r"https?://[^\s'\"]+", " ".join(_as_list(test))):
            parts = urlsplit(url)
            assert parts.hostname in LOCAL_HOSTS, f"{where}: health check calls {url}"
            health.append(("healthcheck", parts.path, parts.port))
        mounts = [
            (v["target"] if isinstance(v, dict) else str(v).split(":")[1])
            for v in svc.get("volumes", [])
        ]
        containers[name] = Container(
            where=where,
            runs=runs,
            env=_compose_env(svc),
            ports=ports,
            mounts=mounts,
            health=health,
            produces=produces,
        )
    return containers


def _compose_aliases() -> dict[str, set[str]]:
    """Host name on the compose network -> compose services answering it."""
    names: dict[str, set[str]] = {}
    for name, svc in _compose()["services"].items():
        names.setdefault(name, set()).add(name)
        networks = svc.get("networks")
        for net in networks.values() if isinstance(networks, dict) else []:
            for alias in (net or {}).get("aliases", []):
                names.setdefault(alias, set()).add(name)
    return names


# --- deploy/k8s ---------------------------------------------------------------------------


@cache
def _k8s_docs() -> tuple[tuple[str, dict[str, Any]], ...]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return tuple(docs)


def _k8s(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f, d) for f, d in _k8s_docs() if d.get("kind") == kind]


def _k8s_data(kind: str, name: str) -> dict[str, str]:
    for _, doc in _k8s(kind):
        if doc["metadata"]["name"] == name:
            data = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
            return {str(k): _yaml_scalar(v) for k, v in data.items()}
    pytest.fail(f"deploy/k8s: a container references {kind} {name!r}, which no manifest defines")


_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def _pod_templates() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(file, kind/name, pod template metadata, pod spec) of every workload."""
    for kind in _WORKLOADS:
        for file, doc in _k8s(kind):
            template = doc["spec"]["template"]
            yield file, f"{kind}/{doc['metadata']['name']}", template["metadata"], template["spec"]


def _k8s_container(file: str, owner: str, c: dict[str, Any]) -> Container:
    where = f"deploy/k8s/{file} {owner} container {c['name']!r}"
    entrypoint = _as_list(c.get("command")) or [_console_script()]
    runs, produces = _runs(where, entrypoint, _as_list(c.get("args")))
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = _k8s_data("ConfigMap", source["configMapRef"]["name"])
        else:
            data = _k8s_data("Secret", source["secretRef"]["name"])
        env.update({prefix + k: v for k, v in data.items()})
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = _yaml_scalar(var["value"])
        else:
            ref = var["valueFrom"].get("secretKeyRef") or var["valueFrom"].get("configMapKeyRef")
            kind = "Secret" if "secretKeyRef" in var["valueFrom"] else "ConfigMap"
            env[var["name"]] = _k8s_data(kind, ref["name"])[ref["key"]]
    named_ports = {p.get("name"): int(p["containerPort"]) for p in c.get("ports", [])}
    health = []
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        http = (c.get(probe) or {}).get("httpGet")
        if http:
            port = http["port"]
            health.append((probe, http["path"], named_ports.get(port, port)))
    return Container(
        where=where,
        runs=runs,
        env=env,
        ports=list(named_ports.values()),
        port_names={k: v for k, v in named_ports.items() if k},
        mounts=[m["mountPath"] for m in c.get("volumeMounts", [])],
        health=health,
        memory_limit=((c.get("resources") or {}).get("limits") or {}).get("memory"),
        produces=produces,
    )


@cache
def _k8s_containers() -> tuple[tuple[str, dict[str, Any], Container], ...]:
    """(workload kind/name, pod labels, container) for every container of every workload."""
    found = []
    for file, owner, meta, spec in _pod_templates():
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            found.append((owner, meta.get("labels") or {}, _k8s_container(file, owner, c)))
    return tuple(found)


def _k8s_secret_mounts(owner: str) -> dict[str, set[str]]:
    """mountPath -> keys of the Secret mounted there (for one workload)."""
    for _, name, _, spec in _pod_templates():
        if name != owner:
            continue
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts: dict[str, set[str]] = {}
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            for m in c.get("volumeMounts", []):
                secret = volumes.get(m["name"], {}).get("secret")
                if secret:
                    mounts[m["mountPath"]] = set(_k8s_data("Secret", secret["secretName"]))
        return mounts
    return {}


# --- checks shared by compose and k8s -----------------------------------------------------


def _settings(entry: ServiceEntry, env: dict[str, str], mp: pytest.MonkeyPatch) -> ServiceSettings:
    """The settings the service would read from this environment (production checks off:
    those refuse the example placeholders on purpose)."""
    with mp.context() as m:
        for key in list(os.environ):
            if key.startswith("VZH_"):
                m.delenv(key)
        for key, value in env.items():
            m.setenv(key, value)
        return entry.settings(env="development")


@dataclass
class Effective:
    settings: ServiceSettings
    port: int
    host: str


def _check_container(c: Container, mp: pytest.MonkeyPatch, problems: list[str]) -> None:
    configured = c.configured()
    known: dict[str, tuple[str, str]] = {}
    for name in configured:
        entry = services()[name]
        known.update({var: (name, f) for var, f in _setting_names(entry).items()})
    for var in sorted(c.env):
        if var not in known:
            owners = [n for n, e in services().items() if var in _setting_names(e)]
            hint = f" (a setting of {owners[0]}, not of this container)" if owners else ""
            problems.append(
                f"{c.where}: sets {var}, which is not a setting of "
                f"{' / '.join(configured) or 'anything it runs'}{hint}"
            )
    for name in configured:
        entry = services()[name]
        own = {k: v for k, v in c.env.items() if k in _setting_names(entry)}
        try:
            settings = _settings(entry, own, mp)
        except Exception as exc:
            problems.append(f"{c.where}: {name}'s settings reject the environment: {exc}")
            return
        if name in DATABASE_SERVICES:
            url = settings.database_url
            if urlsplit(url).scheme != POSTGRES_ASYNC_SCHEME:
                problems.append(
                    f"{c.where}: {entry.env_prefix}DATABASE_URL is {url.split(':')[0]}://…; "
                    f"the deployed topology runs {POSTGRES_ASYNC_SCHEME}://"
                )
        for var, field_name in _setting_names(entry).items():
            annotation = _model_fields(entry)[field_name].annotation
            # Files are opened by the running service, not by `migrate`.
            if var in own and _is_path_field(annotation) and name == c.served():
                values = getattr(settings, field_name)
                for path in values if isinstance(values, list) else [values]:
                    _check_file(c, var, str(path), problems)
    if c.served():
        eff = _effective(c, mp)
        if eff.host not in ALL_INTERFACES:
            problems.append(
                f"{c.where}: binds {eff.host}; a container must listen on 0.0.0.0 "
                f"(set {services()[c.served() or ''].env_prefix}HOST)"
            )
        if c.ports and eff.port not in c.ports:
            problems.append(
                f"{c.where}: the service listens on {eff.port} (PORT setting / its default) "
                f"but the container declares ports {c.ports}"
            )
        served = _served_health_paths(c.served() or "")
        if not any(p == "/health/ready" for _, p, _ in c.health if p in served):
            problems.append(f"{c.where}: no health check / readiness probe on /health/ready")
        for kind, path, port in c.health:
            if path not in served:
                problems.append(f"{c.where}: {kind} calls {path}; the app serves {sorted(served)}")
            if port is not None and port != eff.port:
                problems.append(
                    f"{c.where}: {kind} calls port {port}; the service listens on {eff.port}"
                )


def _check_file(c: Container, var: str, path: str, problems: list[str]) -> None:
    if not any(PurePosixPath(path).is_relative_to(m) for m in c.mounts):
        problems.append(f"{c.where}: {var}={path} lies under none of its mounts {c.mounts}")


def _effective(c: Container, mp: pytest.MonkeyPatch) -> Effective:
    entry = services()[c.served() or ""]
    own = {k: v for k, v in c.env.items() if k in _setting_names(entry)}
    settings = _settings(entry, own, mp)
    return Effective(
        settings=settings,
        port=c.cli_port() or settings.port,
        host=c.cli_host() or settings.host,
    )


def _url_target(field_name: str) -> str | None:
    """The registry service a ``<x>_url`` setting points at (ingest_url -> ingest,
    duo_url -> mock-duo via its VZH_DUO_ prefix), or None for other URLs."""
    if not field_name.endswith("_url"):
        return None
    stem = field_name.removesuffix("_url")
    for name, entry in services().items():
        prefix_stem = entry.env_prefix.removeprefix("VZH_").rstrip("_").lower()
        if stem in (name.replace("-", "_"), prefix_stem):
            return name
    return None


def _fail(problems: list[str]) -> None:
    if problems:
        pytest.fail("deployment drifted from the code:\n  " + "\n  ".join(problems))


# --- Dockerfile ---------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    lines: list[str] = field(default_factory=list)


def _dockerfile_stages() -> list[Stage]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            words = line.split()
            stages.append(Stage(words[-1] if "AS" in (w.upper() for w in words) else ""))
        elif stages:
            stages[-1].lines.append(line)
    return stages


def _instructions(stage: Stage, keyword: str) -> list[str]:
    return [ln[len(keyword) :].strip() for ln in stage.lines if ln.upper().startswith(keyword)]


def _copy_sources(stages: list[Stage]) -> list[str]:
    sources = []
    for stage in stages:
        for args in _instructions(stage, "COPY "):
            words = [w for w in args.split() if not w.startswith("--")]
            if "--from=" in args:
                continue
            sources.extend(words[:-1])
    return sources


# ==========================================================================================
# tests
# ==========================================================================================


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    final = _dockerfile_stages()[-1]
    entrypoints = _instructions(final, "ENTRYPOINT ")
    assert entrypoints, "deploy/Dockerfile: the final stage has no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == [_console_script()], (
        f"deploy/Dockerfile: ENTRYPOINT {entrypoints[-1]} must be the exec form "
        f'["{_console_script()}"], the console script of the root pyproject.toml'
    )
    users = _instructions(final, "USER ")
    assert users, "deploy/Dockerfile: the final stage must switch to a non-root USER"
    assert users[-1].split(":")[0] not in ("root", "0"), "deploy/Dockerfile runs as root"


def test_dockerfile_installs_the_locked_workspace_without_dev_dependencies() -> None:
    stages = _dockerfile_stages()
    syncs = [r for s in stages for r in _instructions(s, "RUN ") if "uv sync" in r]
    assert syncs, "deploy/Dockerfile: no `uv sync`"
    for run in syncs:
        assert "--frozen" in run, f"deploy/Dockerfile: `{run}` must use --frozen (uv.lock)"
        assert "--no-dev" in run, f"deploy/Dockerfile: `{run}` must use --no-dev"
    sources = _copy_sources(stages)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = pyproject["tool"]["uv"]["workspace"]["members"]
    for needed in ["pyproject.toml", "uv.lock", "src"] + [
        f"{m}/{part}" for m in members for part in ("pyproject.toml", "src")
    ]:
        assert needed in sources, (
            f"deploy/Dockerfile does not COPY {needed} (a workspace member or the lockfile)"
        )


def test_dockerfile_copies_only_existing_files_the_dockerignore_lets_through() -> None:
    patterns = [
        ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip()[:1] not in "#"
    ]
    allowlist = patterns[:1] == ["*"]
    keep = [p[1:] for p in patterns if p.startswith("!")]
    for source in _copy_sources(_dockerfile_stages()):
        assert (ROOT / source).exists(), f"deploy/Dockerfile copies {source}, which is missing"
        if allowlist:
            assert any(fnmatch.fnmatch(source, p) for p in keep), (
                f".dockerignore keeps {source} out of the build context; deploy/Dockerfile "
                "copies it (add `!{source}`)"
            )


def test_compose_builds_the_dockerfile() -> None:
    for name, svc in _compose()["services"].items():
        if "build" in svc:
            build = svc["build"]
            context = ROOT / build.get("context", ".")
            assert context.resolve() == ROOT, f"compose {name!r}: build context must be the repo"
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE, (
                f"compose {name!r}: builds {build['dockerfile']}, not deploy/Dockerfile"
            )


def test_compose_containers_match_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    problems: list[str] = []
    for c in _compose_containers().values():
        _check_container(c, monkeypatch, problems)
    produced = set().union(*(c.produces for c in _compose_containers().values()))
    for c in _compose_containers().values():
        for name in filter(None, [c.served()]):
            entry = services()[name]
            for var, field_name in _setting_names(entry).items():
                annotation = _model_fields(entry)[field_name].annotation
                if var in c.env and _is_path_field(annotation):
                    for path in _env_paths(c.env[var]):
                        if path not in produced:
                            problems.append(
                                f"{c.where}: {var}={path} is a file no one-shot container "
                                f"writes (they write {sorted(produced)})"
                            )
    _fail(problems)


def _env_paths(value: str) -> list[str]:
    return [str(p) for p in json.loads(value)] if value.startswith("[") else [value]


def test_compose_deploys_every_service_with_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    containers = _compose_containers().values()
    for name in services():
        serving = [c for c in containers if c.served() == name]
        assert serving, f"docker-compose.yml: no container runs `serve {name}`"
        workers = [c for c in serving if _effective(c, monkeypatch).settings.run_workers]
        assert workers, (
            f"docker-compose.yml: no {name} container runs the workers (ADR 0002: one "
            "replica with RUN_WORKERS=true)"
        )
        published = {_effective(c, monkeypatch).port for c in serving if c.ports}
        assert published == {services()[name].default_port}, (
            f"docker-compose.yml: {name} publishes {published}; its default port is "
            f"{services()[name].default_port}"
        )


def test_compose_migrates_each_database_before_its_service() -> None:
    containers = _compose_containers()
    problems = []
    for key, c in containers.items():
        name = c.served()
        if name not in DATABASE_SERVICES:
            continue
        url_var = f"{services()[name].env_prefix}DATABASE_URL"
        deps = _compose()["services"][key].get("depends_on") or {}
        migrations = [
            dep
            for dep, cond in (deps.items() if isinstance(deps, dict) else [])
            if dep in containers
            and name in containers[dep].migrated()
            and (cond or {}).get("condition") == "service_completed_successfully"
        ]
        if not migrations:
            problems.append(
                f"{c.where}: must depend_on a `migrate {name}` container with condition "
                "service_completed_successfully"
            )
        for dep in migrations:
            if containers[dep].env.get(url_var) != c.env.get(url_var):
                problems.append(f"{c.where}: {url_var} differs from {containers[dep].where}'s")
    _fail(problems)


def test_compose_databases_exist_in_the_init_script() -> None:
    sql = INIT_SQL.read_text()
    databases = set(re.findall(r"CREATE DATABASE (\w+)", sql, re.IGNORECASE))
    roles = set(re.findall(r"CREATE (?:ROLE|USER) (\w+)", sql, re.IGNORECASE))
    mounted = any(
        "deploy/postgres/init.sql" in str(volume)
        for svc in _compose()["services"].values()
        for volume in svc.get("volumes", [])
    )
    assert mounted, "docker-compose.yml: deploy/postgres/init.sql is mounted into no container"
    aliases = _compose_aliases()
    for c in _compose_containers().values():
        for name in c.configured():
            url = c.env.get(f"{services()[name].env_prefix}DATABASE_URL")
            if name not in DATABASE_SERVICES or url is None:
                continue
            parts = urlsplit(url)
            db = parts.path.lstrip("/")
            assert db in databases, f"{c.where}: database {db!r} is not created by init.sql"
            assert parts.username in roles, (
                f"{c.where}: role {parts.username!r} is not created by init.sql"
            )
            assert parts.hostname in aliases, (
                f"{c.where}: database host {parts.hostname!r} is no compose service"
            )


def test_compose_urls_between_services_point_at_them(monkeypatch: pytest.MonkeyPatch) -> None:
    containers = _compose_containers()
    aliases = _compose_aliases()
    problems = []
    for c in containers.values():
        for name in c.configured():
            for var, field_name in _setting_names(services()[name]).items():
                target = _url_target(field_name)
                if target is None or var not in c.env:
                    continue
                parts = urlsplit(c.env[var])
                answering = [containers[k] for k in aliases.get(parts.hostname or "", ())]
                if not answering or any(a.served() != target for a in answering):
                    problems.append(
                        f"{c.where}: {var}={c.env[var]} must name a compose service "
                        f"that runs `serve {target}`"
                    )
                    continue
                for a in answering:
                    port = _effective(a, monkeypatch).port
                    if parts.port != port:
                        problems.append(
                            f"{c.where}: {var} uses port {parts.port}; {a.where} listens on {port}"
                        )
    _fail(problems)


def test_k8s_manifests_are_listed_in_the_kustomization() -> None:
    (kustomization,) = (d for _, d in _k8s("Kustomization"))
    listed = set(kustomization["resources"])
    for path in sorted(K8S_DIR.glob("*.y*ml")):
        if path.name.startswith("kustomization") or ".example." in path.name:
            continue
        assert path.name in listed, f"deploy/k8s/{path.name} is missing from kustomization"
    images = {i["name"] for i in kustomization.get("images", [])}
    assert images, "deploy/k8s/kustomization.yaml: set the Verzuimhub image under images:"
    for _, _, _, spec in _pod_templates():
        for container in spec["containers"]:
            assert container["image"].split(":")[0] in images, (
                f"deploy/k8s: container image {container['image']} is not set by kustomization"
            )


def test_k8s_containers_match_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    problems: list[str] = []
    for owner, _, c in _k8s_containers():
        _check_container(c, monkeypatch, problems)
        secret_mounts = _k8s_secret_mounts(owner)
        for name in filter(None, [c.served()]):
            entry = services()[name]
            for var, field_name in _setting_names(entry).items():
                annotation = _model_fields(entry)[field_name].annotation
                if var not in c.env or not _is_path_field(annotation):
                    continue
                for path in _env_paths(c.env[var]):
                    for mount, keys in secret_mounts.items():
                        rel = PurePosixPath(path)
                        if rel.is_relative_to(mount) and str(rel.relative_to(mount)) not in keys:
                            problems.append(
                                f"{c.where}: {var}={path}, but the Secret mounted at {mount} "
                                f"has keys {sorted(keys)}"
                            )
        if c.memory_limit is None:
            problems.append(f"{c.where}: no memory limit")
        elif _bytes(c.memory_limit) > MEMORY_TARGET_BYTES:
            problems.append(f"{c.where}: memory limit {c.memory_limit} exceeds 300 MB")
        if c.served():
            kinds = {kind: path for kind, path, _ in c.health}
            if kinds.get("readinessProbe") != "/health/ready":
                problems.append(f"{c.where}: readinessProbe must GET /health/ready")
            if kinds.get("livenessProbe") != "/health/live":
                problems.append(f"{c.where}: livenessProbe must GET /health/live")
    _fail(problems)


def test_k8s_production_settings_are_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the example secrets replaced by real ones, ENV=production must accept the pods'
    settings: a secret the code requires in production (say a new service secret that
    defaults to a dev-only value) but the manifests leave out fails here."""
    problems = []
    for _, _, c in _k8s_containers():
        for name in c.configured():
            entry = services()[name]
            own = {k: v for k, v in c.env.items() if k in _setting_names(entry)}
            if own.get(f"{entry.env_prefix}ENV") != "production":
                problems.append(f"{c.where}: {entry.env_prefix}ENV must be production")
                continue
            filled = {k: v.replace(DEV_SECRET_MARKER, "real") for k, v in own.items()}
            with monkeypatch.context() as m:
                for key in list(os.environ):
                    if key.startswith("VZH_"):
                        m.delenv(key)
                for key, value in filled.items():
                    m.setenv(key, value)
                try:
                    entry.settings()
                except Exception as exc:
                    problems.append(f"{c.where}: production refuses the settings: {exc}")
    _fail(problems)


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", str(quantity))
    assert match, f"unreadable memory quantity {quantity!r}"
    return int(float(match[1]) * units.get(match[2] or "", 1))


def test_k8s_deploys_every_service_with_workers_and_migrations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert set(services()) >= K8S_OPTIONAL, f"{K8S_OPTIONAL} are no longer registry services"
    containers = _k8s_containers()
    for name in services():
        serving = [c for owner, _, c in containers if c.served() == name]
        if name in K8S_OPTIONAL and not serving:
            continue
        assert serving, f"deploy/k8s: no Deployment runs `serve {name}`"
        assert any(_effective(c, monkeypatch).settings.run_workers for c in serving), (
            f"deploy/k8s: no {name} Deployment runs the workers (RUN_WORKERS=true, ADR 0002)"
        )
        if name not in DATABASE_SERVICES:
            continue
        url_var = f"{services()[name].env_prefix}DATABASE_URL"
        migrating = [c for _, _, c in containers if name in c.migrated()]
        assert migrating, f"deploy/k8s: no Job or initContainer runs `migrate {name}`"
        urls = {c.env.get(url_var) for c in [*serving, *migrating]}
        assert len(urls) == 1, f"deploy/k8s: {name}'s migration and pods use different {url_var}"


def test_k8s_services_route_to_the_right_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    containers = _k8s_containers()
    problems = []
    k8s_services: dict[str, tuple[str, int]] = {}
    for file, svc in _k8s("Service"):
        name = svc["metadata"]["name"]
        selector = svc["spec"]["selector"]
        selected = [
            (owner, c) for owner, labels, c in containers if selector.items() <= labels.items()
        ]
        served = {c.served() for _, c in selected}
        if not selected or None in served or len(served) != 1:
            problems.append(
                f"deploy/k8s/{file} Service {name}: selects {[o for o, _ in selected]}; it must "
                "select only pods that run `serve` of one service (no migration Job pods)"
            )
            continue
        serving_name = served.pop() or ""
        for port in svc["spec"]["ports"]:
            for owner, c in selected:
                eff = _effective(c, monkeypatch).port
                tp = port.get("targetPort", port["port"])
                if c.port_names.get(tp, tp) != eff or port["port"] != eff:
                    problems.append(
                        f"deploy/k8s/{file} Service {name}: port {port} does not reach "
                        f"{owner}, which listens on {eff}"
                    )
        k8s_services[name] = (serving_name, int(svc["spec"]["ports"][0]["port"]))
    for _, _, c in containers:
        for name in c.configured():
            for var, field_name in _setting_names(services()[name]).items():
                target = _url_target(field_name)
                if target is None or var not in c.env:
                    continue
                parts = urlsplit(c.env[var])
                host = (parts.hostname or "").split(".")[0]
                if host in k8s_services:
                    if k8s_services[host] != (target, parts.port):
                        problems.append(
                            f"{c.where}: {var}={c.env[var]}, but Service {host} is "
                            f"{k8s_services[host]} (service, port)"
                        )
                elif target not in K8S_OPTIONAL:
                    problems.append(
                        f"{c.where}: {var}={c.env[var]} names no Service; {target} is deployed "
                        "in the cluster"
                    )
    _fail(problems)


def test_the_registry_is_what_the_cli_serves() -> None:
    """The checks above rely on ``serve``/``migrate`` choices being the registry's names."""
    parser = cli._parser()
    for name in services():
        assert parser.parse_args(["serve", name]).service == name
    for name in DATABASE_SERVICES:
        assert parser.parse_args(["migrate", name]).service == name
