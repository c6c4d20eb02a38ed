"""One container of a Kubernetes pod spec, run by podman the way a kubelet would run it: the
pod spec's user and groups, read-only root filesystem, capabilities, no-new-privileges,
seccomp profile, memory limit, command, args and env, and its volumes (configMap, secret,
projected, emptyDir) filled from files the caller gives. Every setting is read from the pod
spec, none is written here by hand, so a change to the spec changes the container.

What a kubelet adds to every pod (the service-account token volume that admission inserts,
the ``KUBERNETES_SERVICE_*`` variables) the caller passes in: see
:func:`with_service_account_token`."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .images import podman
from .processes import free_port

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
FileContent = str | bytes


class PodSpecError(ValueError):
    """The pod spec asks for something this runner does not do; the message names the field."""


def with_service_account_token(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """The pod spec as the ServiceAccount admission plugin leaves it: with
    ``automountServiceAccountToken`` not false, a projected ``kube-api-access`` volume
    (token, ca.crt, namespace) mounted read-only in every container."""
    if pod_spec.get("automountServiceAccountToken") is False:
        return pod_spec
    spec = json.loads(json.dumps(pod_spec))
    spec.setdefault("volumes", []).append(
        {
            "name": "kube-api-access",
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"path": "token"}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ]
            },
        }
    )
    for c in spec["containers"]:
        c.setdefault("volumeMounts", []).append(
            {"name": "kube-api-access", "mountPath": SERVICE_ACCOUNT_DIR, "readOnly": True}
        )
    return spec


class PodmanContainer:
    """``containers[container]`` of ``pod_spec`` in podman.

    ``files`` fills the configMap, secret and projected volumes: volume name -> relative path
    -> content. ``network`` is ``"slirp4netns"`` (a network namespace of its own, each
    containerPort published on a free 127.0.0.1 port: see :meth:`port`) or ``"host"``.
    ``fields`` answers ``fieldRef`` env (``metadata.name``...); ``kubelet_env`` is what a kubelet
    adds to every container (its values lose to the container's own)."""

    def __init__(
        self,
        pod_spec: dict[str, Any],
        image: str,
        workdir: Path,
        *,
        container: str | None = None,
        files: Mapping[str, Mapping[str, FileContent]] | None = None,
        network: str = "slirp4netns",
        fields: Mapping[str, str] | None = None,
        kubelet_env: Mapping[str, str] | None = None,
        read_only_root: bool | None = None,
    ) -> None:
        self.pod_spec = pod_spec
        containers = pod_spec["containers"]
        self.container = (
            containers[0]
            if container is None
            else next(c for c in containers if c["name"] == container)
        )
        self.image = image
        self.workdir = workdir
        self.files = files or {}
        self.network = network
        self.fields = {"metadata.name": self.container["name"], **(fields or {})}
        self.kubelet_env = dict(kubelet_env or {})
        # None: as the spec says. False runs the same container with a writable root, to see
        # with `podman diff` what it would have written there.
        self.read_only_root = read_only_root
        self.name = f"mm-{self.container['name']}-{uuid.uuid4().hex[:8]}"
        self.ports: dict[int, int] = {}
        self.volume_dirs: dict[str, Path] = {}
        self.started = False

    # -- the translation ------------------------------------------------------------------------

    def security_context(self) -> dict[str, Any]:
        """The container's securityContext over the pod's (the container's fields win)."""
        pod = self.pod_spec.get("securityContext") or {}
        own = self.container.get("securityContext") or {}
        merged = {
            k: pod[k]
            for k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
            if k in pod
        }
        merged.update(own)
        return merged

    def user(self) -> tuple[int, int | None]:
        sc = self.security_context()
        uid = sc.get("runAsUser")
        if uid is None:
            image_user = podman("image", "inspect", "--format", "{{.Config.User}}", self.image)
            name = image_user.stdout.strip().partition(":")[0]
            if not name.isdigit():
                # The kubelet refuses runAsNonRoot with a non-numeric image user, and so do we.
                raise PodSpecError(
                    f"securityContext.runAsUser: unset and the image's USER {name!r} is not numeric"
                )
            uid = int(name)
        if sc.get("runAsNonRoot") and uid == 0:
            raise PodSpecError("securityContext.runAsNonRoot: the container would run as root")
        gid = sc.get("runAsGroup")
        return int(uid), None if gid is None else int(gid)

    def podman_args(self) -> list[str]:
        """``podman run`` options and the command line, from the pod spec."""
        c = self.container
        sc = self.security_context()
        uid, gid = self.user()
        args = [
            "--name",
            self.name,
            "--hostname",
            self.fields["metadata.name"][:63],
            "--pull",
            "never",
            "--user",
            f"{uid}:{gid}" if gid is not None else str(uid),
        ]
        pod_sc = self.pod_spec.get("securityContext") or {}
        for g in [pod_sc.get("fsGroup"), *pod_sc.get("supplementalGroups", [])]:
            if g is not None:
                args += ["--group-add", str(g)]
        read_only = sc.get("readOnlyRootFilesystem", False)
        if self.read_only_root is not None:
            read_only = self.read_only_root
        if read_only:
            # podman would add writable tmpfs on /tmp, /var/tmp and /run: a pod gets none.
            args += ["--read-only", "--read-only-tmpfs=false"]
        caps = sc.get("capabilities") or {}
        for cap in caps.get("drop", []):
            args += ["--cap-drop", cap]
        for cap in caps.get("add", []):
            args += ["--cap-add", cap]
        if sc.get("privileged"):
            raise PodSpecError("securityContext.privileged: not run here")
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        seccomp = (sc.get("seccompProfile") or {}).get("type", "RuntimeDefault")
        if seccomp == "Unconfined":
            args += ["--security-opt", "seccomp=unconfined"]
        elif seccomp != "RuntimeDefault":
            raise PodSpecError(f"securityContext.seccompProfile.type: {seccomp} is not supported")
        memory = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if memory:
            args += ["--memory", _podman_quantity(memory)]
        grace = self.pod_spec.get("terminationGracePeriodSeconds")
        if grace is not None:
            args += ["--stop-timeout", str(grace)]
        if c.get("workingDir"):
            args += ["--workdir", c["workingDir"]]
        args += self._network_args()
        args += self._volume_args()
        for key, value in self._env().items():
            args += ["--env", f"{key}={value}"]
        if c.get("command"):
            args += ["--entrypoint", json.dumps(c["command"])]
        args.append(self.image)
        if c.get("args") is not None:
            args += c["args"]
        elif c.get("command"):
            pass  # Kubernetes: a command without args drops the image's CMD too
        return args

    def _network_args(self) -> list[str]:
        if self.network == "host":
            return ["--network", "host"]
        if self.network != "slirp4netns":
            raise ValueError(f"network: {self.network!r} is neither slirp4netns nor host")
        args = ["--network", "slirp4netns"]
        for p in self.container.get("ports", []):
            host = self.ports.setdefault(p["containerPort"], free_port())
            args += [
                "--publish",
                f"127.0.0.1:{host}:{p['containerPort']}/{p.get('protocol', 'TCP').lower()}",
            ]
        return args

    def _env(self) -> dict[str, str]:
        env = dict(self.kubelet_env)
        for i, e in enumerate(self.container.get("env", [])):
            if "value" in e:
                env[e["name"]] = str(e["value"])
                continue
            field = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
            if field not in self.fields:
                raise PodSpecError(
                    f"env[{i}] ({e['name']}): only values and fieldRef {sorted(self.fields)}"
                )
            env[e["name"]] = self.fields[field]
        return env

    def _volume_args(self) -> list[str]:
        volumes = {v["name"]: v for v in self.pod_spec.get("volumes", [])}
        root = self.workdir / "volumes"
        args: list[str] = []
        for i, mount in enumerate(self.container.get("volumeMounts", [])):
            where = f"volumeMounts[{i}] ({mount['name']})"
            if mount.get("subPath") or mount.get("subPathExpr"):
                raise PodSpecError(f"{where}.subPath: not supported")
            volume = volumes.get(mount["name"])
            if volume is None:
                raise PodSpecError(f"{where}: no volume of that name in the pod spec")
            dest = mount["mountPath"]
            if "emptyDir" in volume:
                empty = volume["emptyDir"] or {}
                if empty.get("medium") == "Memory":
                    size = _podman_quantity(empty.get("sizeLimit", "64Mi"))
                    args += [
                        "--mount",
                        f"type=tmpfs,destination={dest},tmpfs-size={size},tmpfs-mode=1777",
                    ]
                    continue
                local = root / mount["name"]
                local.mkdir(parents=True, exist_ok=True)
                local.chmod(0o777)  # as the kubelet makes an emptyDir
            elif any(k in volume for k in ("configMap", "secret", "projected")):
                local = root / mount["name"]
                shutil.rmtree(local, ignore_errors=True)
                local.mkdir(parents=True)
                given = self.files.get(mount["name"])
                if given is None:
                    raise PodSpecError(
                        f"{where}: no files given for this {next(iter(volume))} volume"
                    )
                for rel, content in given.items():
                    path = local / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if isinstance(content, bytes):
                        path.write_bytes(content)
                    else:
                        path.write_text(content)
                    path.chmod(0o644)  # the kubelet's defaultMode
                # Like the kubelet (makeNestedMountpoints): mount points of volumes mounted
                # beneath this read-only one are made in it beforehand.
                for other in self.container.get("volumeMounts", []):
                    inner = Path(other["mountPath"])
                    if other is not mount and inner.is_relative_to(dest):
                        (local / inner.relative_to(dest)).mkdir(parents=True, exist_ok=True)
                # The kubelet mounts these read-only whatever the mount says.
                args += ["--volume", f"{local}:{dest}:ro"]
                self.volume_dirs[mount["name"]] = local
                continue
            else:
                kind = next((k for k in volume if k != "name"), "?")
                raise PodSpecError(f"{where}: {kind} volumes are not supported")
            mode = "ro" if mount.get("readOnly") else "rw"
            args += ["--volume", f"{local}:{dest}:{mode}"]
            self.volume_dirs[mount["name"]] = local
        return args

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> PodmanContainer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = self.podman_args()
        (self.workdir / "podman-run.json").write_text(json.dumps(args, indent=1))
        try:
            podman("run", "--detach", *args, timeout=120)
        except BaseException:
            podman("rm", "--force", self.name, check=False)  # a run that failed leaves one
            raise
        self.started = True
        return self

    def port(self, container_port: int) -> int:
        """The 127.0.0.1 port that ``container_port`` is published on."""
        if self.network == "host":
            return container_port
        return self.ports[container_port]

    def state(self) -> dict[str, Any]:
        out = podman("inspect", "--format", "{{json .State}}", self.name)
        return dict(json.loads(out.stdout))

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def logs(self) -> str:
        r = podman("logs", self.name, check=False)
        return r.stdout + r.stderr

    def diff(self) -> list[tuple[str, str]]:
        """What changed in the container's own root filesystem: (kind A/C/D, path)."""
        out = podman("diff", "--format", "json", self.name).stdout
        doc = json.loads(out or "{}")
        return sorted(
            (kind[0].upper(), path) for kind, paths in doc.items() for path in paths or []
        )

    def stop(self) -> int:
        """Stop as a kubelet does (SIGTERM, SIGKILL after the grace period); the container
        stays for :meth:`logs` and :meth:`diff` until :meth:`remove`. Returns the exit code."""
        if not self.started:
            return -1
        grace = int(self.pod_spec.get("terminationGracePeriodSeconds", 30))
        podman("stop", "--time", str(grace), self.name, check=False, timeout=grace + 60)
        (self.workdir / "container.log").write_text(self.logs())
        return int(self.state().get("ExitCode", -1))

    def remove(self) -> None:
        if self.started:
            podman("rm", "--force", self.name, check=False, timeout=120)
            self.started = False

    def __enter__(self) -> PodmanContainer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _podman_quantity(quantity: str) -> str:
    """A Kubernetes memory quantity (``512Mi``, ``64M``) as podman reads it (``512m``...)."""
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "K": 1000, "M": 1000**2, "G": 1000**3}
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return str(int(float(quantity[: -len(unit)]) * factor))
    return str(int(float(quantity)))
