"""The public surface: ``reattach.__all__`` is sorted, importable and as documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

import reattach
import reattach.store

# The names the design promises (DESIGN.md, sections 2, 5 and 8), and nothing else.
DOCUMENTED = {
    # the store and the manager
    "GenerationManager",
    "JobStore",
    "MemoryJobStore",
    "RedisJobStore",
    # values
    "Chunk",
    "Job",
    "JobStatus",
    "Limits",
    "Snapshot",
    "TTLPolicy",
    # errors
    "BackendUnavailable",
    "InvalidCursor",
    "InvalidEvent",
    "InvalidId",
    "JobExists",
    "JobFinished",
    "JobNotFound",
    "PayloadTooLarge",
    "ReattachError",
    "TooManyJobs",
}

ERRORS = {
    "BackendUnavailable",
    "InvalidCursor",
    "InvalidEvent",
    "InvalidId",
    "JobExists",
    "JobFinished",
    "JobNotFound",
    "PayloadTooLarge",
    "TooManyJobs",
}


def test_all_is_sorted_and_unique() -> None:
    assert reattach.__all__ == sorted(reattach.__all__)
    assert len(set(reattach.__all__)) == len(reattach.__all__)


def test_all_is_the_documented_list() -> None:
    assert set(reattach.__all__) == DOCUMENTED


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_public_name_imports(name: str) -> None:
    value = getattr(importlib.import_module("reattach"), name)
    assert value is getattr(reattach, name)
    assert inspect.getdoc(value), f"{name} has no docstring"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(reattach, "no_such_name")  # noqa: B009 - the name is the test
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(reattach.store, "no_such_name")  # noqa: B009


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_every_error_is_a_reattach_error(name: str) -> None:
    error = getattr(reattach, name)
    assert issubclass(error, reattach.ReattachError)
    assert error.__module__ == "reattach._errors"


def test_store_all_is_sorted_and_importable() -> None:
    assert reattach.store.__all__ == sorted(reattach.store.__all__)
    for name in reattach.store.__all__:
        assert getattr(reattach.store, name) is getattr(
            importlib.import_module("reattach.store"), name
        )
    assert reattach.store.RedisJobStore is reattach.RedisJobStore
    assert reattach.store.MemoryJobStore is reattach.MemoryJobStore


def test_backends_keep_the_whole_contract() -> None:
    for backend in (reattach.MemoryJobStore, reattach.RedisJobStore):
        assert issubclass(backend, reattach.JobStore)
        assert not inspect.isabstract(backend), backend.__abstractmethods__


def test_version() -> None:
    assert isinstance(reattach.__version__, str)
    assert reattach.__version__.count(".") >= 2
