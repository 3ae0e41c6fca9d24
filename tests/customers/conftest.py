from tests.api.conftest import api_for

__all__ = ["api_for"]
