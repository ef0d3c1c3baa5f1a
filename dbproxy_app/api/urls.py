from django.urls import path

from dbproxy_app.api import records, views
from platformsite.api.views import ServiceRootView

app_name = "dbproxy_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="db"), name="root"),
    path("databases/", views.DatabaseListView.as_view(), name="databases"),
    path("databases/<str:database>/", views.DatabaseDetailView.as_view(), name="database"),
    path("databases/<str:database>/tables/", views.TableListView.as_view(), name="tables"),
    path("databases/<str:database>/tables/<str:table>/", views.TableDetailView.as_view(), name="table"),
    path("databases/<str:database>/policies/", views.RowPolicyListView.as_view(), name="policies"),
    path(
        "databases/<str:database>/policies/<int:policy_id>/",
        views.RowPolicyDetailView.as_view(),
        name="policy",
    ),
    path("<str:database>/<str:table>/records/", records.RecordListView.as_view(), name="records"),
    path(
        "<str:database>/<str:table>/records/<str:record_id>/",
        records.RecordDetailView.as_view(),
        name="record",
    ),
    path("<str:database>/<str:table>/bulk/", records.BulkView.as_view(), name="bulk"),
]
