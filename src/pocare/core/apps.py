from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "pocare.core"
    label = "core"
    verbose_name = "Input bounds and safe rendering"

    def ready(self) -> None:
        from pocare.core import fields  # inside ready(): fields imports DRF serializers, which need settings

        fields.install_serializer_defaults()
