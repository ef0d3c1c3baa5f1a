from django.urls import path

from config_app.api import views
from platformsite.api.views import ServiceRootView

app_name = "config_app"

NS = "namespaces/<str:ns>/"
LAYER = NS + "layers/<str:env>/"

urlpatterns = [
    path("", ServiceRootView.as_view(service="config"), name="root"),
    path("namespaces/", views.NamespaceListView.as_view(), name="namespaces"),
    path(NS, views.NamespaceDetailView.as_view(), name="namespace"),
    path(NS + "resolve", views.ResolveView.as_view(), name="resolve"),
    path(NS + "audit/", views.AuditView.as_view(), name="namespace-audit"),
    path(NS + "layers/", views.LayerListView.as_view(), name="layers"),
    path(LAYER, views.LayerView.as_view(), name="layer"),
    path(LAYER + "values/<path:path>", views.ValueView.as_view(), name="value"),
    path(LAYER + "revisions/", views.RevisionListView.as_view(), name="revisions"),
    path(LAYER + "revisions/<int:number>/", views.RevisionDetailView.as_view(), name="revision"),
    path(LAYER + "diff", views.DiffView.as_view(), name="diff"),
    path(LAYER + "rollback", views.RollbackView.as_view(), name="rollback"),
    path("audit/", views.AuditView.as_view(), name="audit"),
]
