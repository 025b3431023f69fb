"""`pocare patient-keys init|rotate|retire|show`: the key file that seals patients' identifying data
(``POCARE_PATIENT_KEYS``, docs/patients.md "Privacy").

``init`` writes a new key file (mode 0600) and refuses to replace one: the data it seals would become
unreadable. ``rotate`` puts a new key first and seals every identity again under it in one
transaction, with a ledger event. ``retire``, once every server has been restarted on the new file,
drops the older keys that seal nothing any more.
``show`` lists the key ids and how many identities each seals; never a key."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.patients import identity
from pocare.patients.models import Patient
from pocare.patients.services import patient_keys_retire, patient_keys_rotate


class Command(BaseCommand):
    help = ("The key file sealing patients' identifying data: init, rotate (re-seal everything under a new key), "
            "retire (drop older keys no identity uses) or show.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["init", "rotate", "retire", "show"])
        parser.add_argument("--reason", default="", help="Why (recorded in the audit trail).")

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
        if options["action"] == "retire":
            retired = patient_keys_retire(reason=options["reason"] or "Older patient keys retired")
            self.stdout.write(f"retired {', '.join(retired)}." if retired else "no key to retire: every older key "
                              "still seals an identity, or there is none.")
            return
        try:
            done = patient_keys_rotate(reason=options["reason"] or "Patient key rotated (pocare patient-keys rotate)")
        except identity.IdentityUnreadable as exc:
            raise CommandError(f"{exc} Nothing was re-sealed; the new key stays first in the file.") from exc
        self.stdout.write(f"new key {done['key']}: {done['resealed']} identities sealed again. Restart every "
                          "server on this key file, then run 'pocare patient-keys retire'.")
