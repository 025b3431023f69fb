"""`pocare patient-keys init|rotate|show`: the key file that seals patients' identifying data
(``POCARE_PATIENT_KEYS``, docs/patients.md "Privacy").

``init`` writes a new key file (mode 0600) and refuses to replace one: the data it seals would become
unreadable. ``rotate`` puts a new key first and seals every identity again under it in one
transaction, with a ledger event (``--retire`` then drops the keys that seal nothing any more).
``show`` lists the key ids and how many identities each seals; never a key."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.patients import identity
from pocare.patients.models import Patient
from pocare.patients.services import patient_keys_rotate


class Command(BaseCommand):
    help = "The key file sealing patients' identifying data: init, rotate (re-seal everything) or show."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["init", "rotate", "show"])
        parser.add_argument("--reason", default="", help="Why the key is rotated (recorded in the audit trail).")
        parser.add_argument("--retire", action="store_true",
                            help="With rotate: drop the older keys from the file once nothing they sealed is left.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.POCARE_PATIENT_KEYS)
        if options["action"] == "init":
            if path.exists():
                raise CommandError(f"{path} exists already; replacing it would make every sealed identity "
                                   "unreadable. Use 'rotate' to change the key.")
            key_id = identity.keys_init(path)
            identity.keys_forget()
            self.stdout.write(f"key file {path} written (mode 0600), key {key_id}. Keep a copy apart from "
                              "the database backups.")
            return
        if not path.exists():
            raise CommandError(f"no key file at {path}: run 'pocare patient-keys init' first.")
        if options["action"] == "show":
            used = Counter(Patient.objects.exclude(identity=None).values_list("identity_key", flat=True))
            for n, key_id in enumerate(identity.key_ids()):
                self.stdout.write(f"{key_id}{' (seals new data)' if n == 0 else ''}: {used.get(key_id, 0)} identities")
            return
        try:
            done = patient_keys_rotate(reason=options["reason"] or "Patient key rotated (pocare patient-keys rotate)",
                                       retire=options["retire"])
        except identity.IdentityUnreadable as exc:
            raise CommandError(f"{exc} Nothing was re-sealed; the new key stays first in the file.") from exc
        self.stdout.write(f"new key {done['key']}: {done['resealed']} identities sealed again"
                          + (f"; retired {', '.join(done['retired'])}" if done["retired"] else "") + ".")
