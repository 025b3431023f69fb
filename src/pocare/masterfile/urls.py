"""URLs of the master-file pages."""

from django.urls import path

from pocare.masterfile import views

app_name = "masterfile"
urlpatterns = [
    path("masterfile/", views.masterfile_list, name="list"),
    path("masterfile/versions/<int:pk>/", views.version_detail, name="version"),
    path("masterfile/versions/<int:pk>/document.yaml", views.version_document, name="version_document"),
    path("masterfile/versions/<int:pk>/submit/", views.version_submit, name="version_submit"),
    path("masterfile/versions/<int:pk>/review/", views.version_review, name="version_review"),
    path("masterfile/versions/<int:pk>/return/", views.version_return, name="version_return"),
    path("masterfile/versions/<int:pk>/approve/", views.version_approve, name="version_approve"),
    path("masterfile/versions/<int:pk>/effective/", views.version_effective, name="version_effective"),
    path("masterfile/diff/", views.version_diff, name="diff"),
    path("masterfile/changes/", views.changes, name="changes"),
    path("masterfile/changes/new/", views.change_raise, name="change_raise"),
    path("masterfile/changes/<int:pk>/", views.change_detail, name="change"),
    path("masterfile/changes/<int:pk>/reject/", views.change_reject, name="change_reject"),
    path("masterfile/products/<str:code>/dossier/", views.dossier, name="dossier"),
    path("masterfile/products/<str:code>/dossier.pdf", views.dossier_pdf, name="dossier_pdf"),
]
