from typing import Any

from django.core.management.base import BaseCommand

from homeclub.demo.logins import login_table


class Command(BaseCommand):
    help = "Print the demo logins (one per role) and their password."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(login_table())
