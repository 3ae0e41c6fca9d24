"""The HTTP baseline of ``benchmarks/points.py``: a minimal Django view doing the raw
ledger transaction (conditional balance UPDATE + INSERT keyed by the Idempotency-Key),
no middleware, no apps — served by gunicorn with the same settings as the real app.

    DATABASE_URL=postgres://… gunicorn points_baseline_wsgi:application

POST JSON ``{"account": id, "points": ±n}`` with header ``Idempotency-Key``: 200 with
``{"id", "balance_after"}``; a repeated key answers with the first row; 409 when the
balance is short.
"""

import json
import os
from urllib.parse import urlparse

from django.conf import settings

_url = urlparse(os.environ["DATABASE_URL"])
settings.configure(
    DEBUG=False,
    SECRET_KEY="points-baseline-" + "x" * 50,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": _url.username or "",
            "PASSWORD": _url.password or "",
            "HOST": _url.hostname or "",
            "PORT": _url.port or "",
            "CONN_MAX_AGE": 60,  # as the real app's settings
            "CONN_HEALTH_CHECKS": True,
        }
    },
)

import django  # noqa: E402

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import IntegrityError, connection, transaction  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


@csrf_exempt
def ledger(request: HttpRequest) -> HttpResponse:
    body = json.loads(request.body)
    account, delta = int(body["account"]), int(body["points"])
    key = request.headers.get("Idempotency-Key") or ""
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                "UPDATE bench_account SET balance = balance + %s WHERE id = %s "
                "AND balance >= %s RETURNING balance",
                [delta, account, max(0, -delta)],
            )
            row = cur.fetchone()
            if row is None:
                return JsonResponse({"code": "insufficient_points"}, status=409)
            cur.execute(
                "INSERT INTO bench_ledger (account_id, points, balance_after, source) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                [account, delta, row[0], key],
            )
            new = cur.fetchone()
        assert new is not None
        return JsonResponse({"id": new[0], "balance_after": row[0]})
    except IntegrityError:
        with connection.cursor() as cur:
            cur.execute("SELECT id, balance_after FROM bench_ledger WHERE source = %s", [key])
            old = cur.fetchone()
        if old is None:
            raise
        return JsonResponse({"id": old[0], "balance_after": old[1]})


urlpatterns = [path("ledger", ledger)]
application = get_wsgi_application()
