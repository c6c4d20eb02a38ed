"""Classifying API errors and worker events: when the operator applies again."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from mm_operator.reconcile import _namespace_terminating


def _error(status: int, body: dict) -> ApiException:
    e = ApiException(status=status, reason="Forbidden")
    e.body = json.dumps(body)
    return e


def test_namespace_terminating_is_recognised_by_its_cause():
    body = {
        "kind": "Status",
        "reason": "Forbidden",
        "message": 'deployments.apps "mm-x" is forbidden: unable to create new content in '
        "namespace t because it is being terminated",
        "details": {"causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}]},
        "code": 403,
    }
    assert _namespace_terminating(_error(403, body))


def test_other_forbidden_errors_are_not_mistaken_for_it():
    rbac = {"kind": "Status", "reason": "Forbidden", "message": "cannot patch", "code": 403}
    assert not _namespace_terminating(_error(403, rbac))
    assert not _namespace_terminating(_error(409, {"details": {"causes": []}}))
    bad = ApiException(status=403, reason="Forbidden")
    bad.body = "<html>not json</html>"
    assert not _namespace_terminating(bad)


def test_worker_events_reapply_only_on_spec_change_or_deletion():
    from mm_operator.state import OperatorState

    worker_spec_changed = OperatorState().worker_spec_changed
    uid = "test-uid-1"
    assert worker_spec_changed(uid, 1, "ADDED")  # first seen: apply
    assert not worker_spec_changed(uid, 1, "MODIFIED")  # status-only change
    assert not worker_spec_changed(uid, 1, "MODIFIED")
    assert worker_spec_changed(uid, 2, "MODIFIED")  # someone scaled or edited it
    assert worker_spec_changed(uid, 2, "DELETED")  # gone: put it back
    assert worker_spec_changed(uid, 2, "ADDED")  # forgotten on deletion
