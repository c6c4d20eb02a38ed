"""devcluster/podman.py reads every container setting from the pod spec: the operator's
rendered worker spec gives exactly the user, read-only root, capabilities, volumes and
command it says, and changing the spec changes the podman command line."""

from __future__ import annotations

import copy

import pytest

from devcluster.podman import PodmanContainer, PodSpecError, with_service_account_token
from mm_operator.render import RUN_AS, STATE_DIR, TOKEN_DIR
from tests.support.containers import fraud_monitor, rendered_worker

IMAGE = "localhost/model-monitor:test"


def args_of(pod_spec, tmp_path, **kw) -> list[str]:
    files = kw.pop("files", None) or rendered_worker(IMAGE, fraud_monitor())[1]
    return PodmanContainer(pod_spec, IMAGE, tmp_path, files=files, **kw).podman_args()


def option_values(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == option]


def test_worker_spec_becomes_these_options(tmp_path):
    pod_spec, _ = rendered_worker(IMAGE, fraud_monitor())
    args = args_of(pod_spec, tmp_path)
    assert option_values(args, "--user") == [f"{RUN_AS}:{RUN_AS}"]
    assert option_values(args, "--group-add") == [str(RUN_AS)]  # fsGroup
    assert "--read-only" in args and "--read-only-tmpfs=false" in args
    assert option_values(args, "--cap-drop") == ["ALL"]
    assert option_values(args, "--security-opt") == ["no-new-privileges"]
    assert option_values(args, "--memory") == [str(512 * 1024**2)]
    volumes = {v.split(":")[1]: v.split(":")[2] for v in option_values(args, "--volume")}
    assert volumes == {
        "/etc/model-monitor": "ro",
        "/etc/model-monitor/reference": "ro",
        TOKEN_DIR: "ro",
        STATE_DIR: "rw",
    }
    assert option_values(args, "--mount") == [
        "type=tmpfs,destination=/tmp,tmpfs-size=67108864,tmpfs-mode=1777"
    ]
    # The reference's mount point exists in the (read-only) config volume beforehand.
    assert (tmp_path / "volumes" / "config" / "reference").is_dir()
    image_at = args.index(IMAGE)
    assert option_values(args, "--entrypoint") == ['["monitor-worker"]']
    container = pod_spec["containers"][0]
    assert args[image_at + 1 :] == container["args"]
    published = option_values(args, "--publish")
    assert len(published) == 1 and published[0].endswith(":8080/tcp")


def test_a_changed_spec_changes_the_container(tmp_path):
    pod_spec, _ = rendered_worker(IMAGE, fraud_monitor())
    changed = copy.deepcopy(pod_spec)
    sc = changed["containers"][0]["securityContext"]
    sc["readOnlyRootFilesystem"] = False
    sc["capabilities"] = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    changed["securityContext"]["runAsUser"] = 1234
    args = args_of(changed, tmp_path)
    assert "--read-only" not in args
    assert option_values(args, "--cap-add") == ["NET_BIND_SERVICE"]
    assert option_values(args, "--user") == [f"1234:{RUN_AS}"]


def test_root_and_unknown_volumes_are_refused_naming_the_field(tmp_path):
    pod_spec, _ = rendered_worker(IMAGE, fraud_monitor())
    as_root = copy.deepcopy(pod_spec)
    as_root["securityContext"]["runAsUser"] = 0
    with pytest.raises(PodSpecError, match="runAsNonRoot"):
        args_of(as_root, tmp_path)
    hostpath = copy.deepcopy(pod_spec)
    hostpath["volumes"][0] = {"name": "config", "hostPath": {"path": "/etc"}}
    with pytest.raises(PodSpecError, match=r"volumeMounts\[0\] \(config\): hostPath"):
        args_of(hostpath, tmp_path)


def test_service_account_token_is_added_as_admission_does():
    spec = {"containers": [{"name": "c"}], "automountServiceAccountToken": True}
    added = with_service_account_token(spec)
    (mount,) = added["containers"][0]["volumeMounts"]
    assert mount == {
        "name": "kube-api-access",
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        "readOnly": True,
    }
    assert "volumes" not in spec  # the input is left as it was
    assert with_service_account_token({**spec, "automountServiceAccountToken": False}) == {
        **spec,
        "automountServiceAccountToken": False,
    }
