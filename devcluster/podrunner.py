"""A tiny kubelet for tests: images cannot run here, so a Deployment's container is started
as a local process from the exact command, args and env the operator put in its pod spec,
with its ConfigMap, Secret and emptyDir volumes materialised in a temporary directory.

Two things differ from a pod, on purpose and nowhere else:
- absolute mount paths (in args, env values and the mounted files) are mapped to the local
  directories that stand for the volumes;
- the listen address becomes 127.0.0.1 and a free port (what a port-forward gives), because
  tests listen on loopback only.

A container whose probes use HTTPS serves https: its client trusts ``ca`` (PEM), by default
the ``ca.crt`` of the ConfigMap ``<deployment>-ca`` the operator writes beside it."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

from .controlplane import kubectl
from .processes import free_port
from .worker import WorkerProcess


class PodRunner:
    def __init__(self, kubeconfig: Path, namespace: str, deployment: str, workdir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.deployment = deployment
        self.workdir = workdir
        self.port = free_port()
        self.mounts: dict[str, Path] = {}
        self.pod_spec: dict = {}
        self.container: dict = {}

    def _get(self, kind: str, name: str) -> dict:
        return json.loads(
            kubectl(self.kubeconfig, "get", kind, name, "-n", self.namespace, "-o", "json")
        )

    def _materialise(self) -> None:
        dep = self._get("deployment", self.deployment)
        self.pod_spec = dep["spec"]["template"]["spec"]
        self.container = self.pod_spec["containers"][0]
        volumes = {v["name"]: v for v in self.pod_spec.get("volumes", [])}
        root = self.workdir / "volumes"
        shutil.rmtree(root, ignore_errors=True)
        for mount in self.container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            local = root / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                cm = self._get("configmap", volume["configMap"]["name"])
                files = {
                    **cm.get("data", {}),
                    **{k: base64.b64decode(v) for k, v in cm.get("binaryData", {}).items()},
                }
                items = volume["configMap"].get("items")
                for key, path in (
                    ((i["key"], i["path"]) for i in items) if items else ((k, k) for k in files)
                ):
                    self._write(local / path, files[key])
            elif "secret" in volume:
                secret = self._get("secret", volume["secret"]["secretName"])
                for key, value in secret.get("data", {}).items():
                    self._write(local / key, base64.b64decode(value))
            elif "emptyDir" in volume:
                pass
            else:
                raise NotImplementedError(
                    f"volume {mount['name']}: only configMap, secret, emptyDir"
                )
            self.mounts[mount["mountPath"]] = local
        # Mounted text files see the same mapping as args (a config naming a mount path).
        for local in self.mounts.values():
            for f in local.rglob("*"):
                if f.is_file():
                    with contextlib.suppress(UnicodeDecodeError):
                        f.write_text(self.map_paths(f.read_text()))

    @staticmethod
    def _write(path: Path, content: str | bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    def map_paths(self, text: str) -> str:
        """One pass, longest mount path first, whole path components only."""
        if not self.mounts:
            return text
        pattern = "|".join(re.escape(p) for p in sorted(self.mounts, key=len, reverse=True))
        return re.sub(
            rf"(?<![\w.-])({pattern})(?=/|$|[^\w.-])", lambda m: str(self.mounts[m.group(1)]), text
        )

    def argv(self) -> list[str]:
        command = list(self.container.get("command", []))
        args = [self.map_paths(a) for a in self.container.get("args", [])]
        for flag, value in (("--host", "127.0.0.1"), ("--port", str(self.port))):
            if flag in args:
                args[args.index(flag) + 1] = value
        exe = shutil.which(
            command[0], path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
        )
        if exe is None:
            raise FileNotFoundError(f"{command[0]} (the container's command) is not installed here")
        return [exe, *command[1:], *args]

    def env(self) -> dict[str, str]:
        out = {}
        for e in self.container.get("env", []):
            if "value" in e:
                out[e["name"]] = self.map_paths(e["value"])
            elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                out[e["name"]] = f"{self.deployment}-local"
            else:
                raise NotImplementedError(f"env {e['name']}: {e}")
        return out

    def https(self) -> bool:
        probe = self.container.get("readinessProbe") or {}
        return (probe.get("httpGet") or {}).get("scheme") == "HTTPS"

    def start(self, ca: str | None = None) -> WorkerProcess:
        self._materialise()
        if self.https() and ca is None:
            ca = self._get("configmap", f"{self.deployment}-ca")["data"]["ca.crt"]
        worker = WorkerProcess(
            self.workdir, argv=[], env=self.env(), port=self.port, ca=ca if self.https() else None
        )
        worker.argv = self.argv()
        worker.start()
        token_mount = next((p for p in self.mounts if "token" in p), None)
        if token_mount:
            worker.token = (self.mounts[token_mount] / "token").read_text().strip()
        return worker
