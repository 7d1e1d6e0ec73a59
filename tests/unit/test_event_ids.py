"""Callback event ids: unique within a process and across forked workers."""

from __future__ import annotations

import os

from pombo.domain.ids import new_event_id


def test_ids_are_unique_32_hex_digits() -> None:
    ids = [new_event_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_forked_worker_draws_its_own_series() -> None:
    mine = new_event_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child writes its next id and leaves at once
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.close(write)
    theirs = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert len(theirs) == 32
    assert theirs[:16] != mine[:16]
