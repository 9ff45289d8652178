"""A small kustomize renderer for the tests, limited to the features ``deploy/k8s`` uses.

Why: no ``kustomize``/``kubectl`` binary is installable from the registries CI reaches (PyPI's ``kustomize``
package is an unrelated library), so the manifests are rendered here to be validated. Supported:
``resources`` (files, and directories holding a kustomization), ``namespace``, ``images`` (newName/newTag)
and ``patches`` with a ``path`` to a strategic-merge patch (maps merge, ``containers``/``env``/``ports``/
``volumes``/``volumeMounts`` merge by ``name``, other lists are replaced). Anything else in a kustomization
is refused, so a manifest change that needs more fails loudly. Where a real ``kubectl`` is on PATH, the tests
also check this renderer's output equals ``kubectl kustomize``'s.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                  "CustomResourceDefinition", "PriorityClass"}
MERGE_BY_NAME = {"containers", "initContainers", "env", "ports", "volumes", "volumeMounts", "imagePullSecrets"}


def render(folder: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise ValueError(f"{folder}: kustomize_lite does not support {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise ValueError(f"{folder}: only patches with a path are supported, got {patch_entry}")
        for patch in yaml.safe_load_all((folder / patch_entry["path"]).read_text()):
            target = next((d for d in docs if _same(d, patch)), None)
            if target is None:
                raise ValueError(f"{folder}: patch {patch_entry['path']} matches no resource")
            merged = _merge(target, patch)
            docs[docs.index(target)] = merged
    namespace = kustomization.get("namespace")
    if namespace:
        for doc in docs:
            if doc["kind"] == "Namespace":
                doc["metadata"]["name"] = namespace
            elif doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = namespace
            for subject in doc.get("subjects", []) if doc["kind"] in ("RoleBinding", "ClusterRoleBinding") else []:
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
    for image in kustomization.get("images", []):
        for doc in docs:
            for container in _containers(doc):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"
    return docs


def _same(doc: dict[str, Any], patch: dict[str, Any]) -> bool:
    return (doc["kind"], doc["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])


def _merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for name, value in patch.items():
            out[name] = _merge(base[name], value, name) if name in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_BY_NAME:
        out = copy.deepcopy(base)
        for item in patch:
            index = next((i for i, old in enumerate(out) if old.get("name") == item.get("name")), None)
            if index is None:
                out.append(copy.deepcopy(item))
            else:
                out[index] = _merge(out[index], item)
        return out
    return copy.deepcopy(patch)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else spec if doc["kind"] == "Pod" else {}
    return [*pod.get("containers", []), *pod.get("initContainers", [])]
