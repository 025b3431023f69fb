"""The master file's work that runs as a job (docs/jobs.md): the dossier's export."""

from __future__ import annotations

from pocare.accounts.models import User
from pocare.jobs.files import JobFile
from pocare.jobs.tasks import task
from pocare.masterfile import services
from pocare.masterfile.models import MasterFileVersion, Product


@task(max_tries=3, label="Master-file dossier")
def dossier_export_work(*, actor_id: int, product_id: int, fmt: str, version_id: int | None = None) -> JobFile:
    """The dossier for the person who asked (their permission checked again now), its export recorded
    as before. A server that cannot make PDFs fails the job at once, saying why."""
    actor = User.objects.get(pk=actor_id)
    product = Product.objects.get(pk=product_id)
    version = MasterFileVersion.objects.get(pk=version_id, product=product) if version_id is not None else None
    export = services.dossier_export(actor=actor, product=product, fmt=fmt, version=version)
    return JobFile(content=export.content, download_name=export.filename, content_type=export.content_type,
                   summary={"product": product.code, "format": fmt, "event": export.event_label})
