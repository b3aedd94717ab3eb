"""A real PostgreSQL server (Debian's `postgresql`) on 127.0.0.1 for the RDB storage tests, started and stopped here."""

from __future__ import annotations

import glob

import pytest


@pytest.fixture(scope="session")
def postgres_url():
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("PostgreSQL not installed (Debian package postgresql; make install adds it)")
    from deepseek.tune.postgres import throwaway_postgres

    with throwaway_postgres() as url:
        yield url
