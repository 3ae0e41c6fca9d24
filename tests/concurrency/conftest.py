import pytest
from django.db import connection


@pytest.fixture(autouse=True)
def _postgres_only(db: object) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrency tests need PostgreSQL (real concurrent connections)")
