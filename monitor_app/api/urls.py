from django.urls import path

from monitor_app.api import views
from platformsite.api.views import ServiceRootView

app_name = "monitor_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="monitor"), name="root"),
    path("ping/", views.PingView.as_view(), name="ping"),
    path("reports/", views.ReportView.as_view(), name="report"),
    path("reports/batch/", views.BatchReportView.as_view(), name="reports"),
    path("services/", views.ServiceListView.as_view(), name="services"),
    path("services/<str:name>/", views.ServiceDetailView.as_view(), name="service"),
    path("services/<str:name>/flips/", views.ServiceFlipsView.as_view(), name="service-flips"),
    path("services/<str:name>/uptime/", views.ServiceUptimeView.as_view(), name="service-uptime"),
    path("checks/", views.CheckListView.as_view(), name="checks"),
    path("checks/<uuid:check_id>/", views.CheckDetailView.as_view(), name="check"),
    path("checks/<uuid:check_id>/flips/", views.CheckFlipsView.as_view(), name="check-flips"),
    path("checks/<uuid:check_id>/uptime/", views.CheckUptimeView.as_view(), name="check-uptime"),
    path("checks/<uuid:check_id>/pings/", views.CheckPingsView.as_view(), name="check-pings"),
    path("flips/", views.FlipListView.as_view(), name="flips"),
    path("maintenance/", views.MaintenanceListView.as_view(), name="maintenance"),
    path("maintenance/<int:pk>/", views.MaintenanceDetailView.as_view(), name="maintenance-window"),
    path("keys/", views.PingKeyListView.as_view(), name="keys"),
    path("stats/", views.StatsView.as_view(), name="stats"),
]
