"""RaySession: a private local Ray started on a background thread while the study opens."""

from __future__ import annotations

import threading

import pytest
import ray

from nas_width.search.ray_session import RaySession


@ray.remote(num_cpus=1)
def _square(x: int) -> int:
    return x * x


@pytest.mark.skipif(ray.is_initialized(), reason="needs to start its own Ray")
def test_background_ray_outlives_its_start_and_is_shut_down_by_close() -> None:
    """Ray's processes die with the thread that forked them (Linux's parent-death signal):
    the session keeps that thread alive, so tasks still run after ``start`` returned."""
    session = RaySession(None)
    session.start()
    assert any(t.name == "nas-width-ray" for t in threading.enumerate())
    assert session.wait() is True
    assert ray.get([_square.remote(i) for i in range(3)]) == [0, 1, 4]
    session.close()
    assert not ray.is_initialized()
    assert not any(t.name == "nas-width-ray" for t in threading.enumerate())
    session.close()  # idempotent


def test_close_without_start_does_nothing() -> None:
    session = RaySession(None)
    session.close()
    assert not ray.is_initialized()
