from django.urls import path

from platformsite.api.views import ServiceRootView
from router_app.api import views

app_name = "router_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="router"), name="root"),
    path("stats/", views.StatsView.as_view(), name="stats"),
    path("routes/<str:name>/", views.RoutesView.as_view(), name="routes"),
    path("services/", views.ServiceListView.as_view(), name="services"),
    path("services/<str:name>/decisions/", views.DecisionsView.as_view(), name="decisions"),
    path("services/<str:name>/evaluate/", views.EvaluateView.as_view(), name="evaluate"),
    path("services/<str:name>/policy/", views.PolicyView.as_view(), name="policy"),
    path("labels/", views.LabelListView.as_view(), name="labels"),
    path("labels/<int:pk>/", views.LabelDetailView.as_view(), name="label"),
    path("rules/", views.RuleListView.as_view(), name="rules"),
    path("rules/<int:pk>/", views.RuleDetailView.as_view(), name="rule"),
    path("ratelimits/", views.RateLimitListView.as_view(), name="ratelimits"),
    path("ratelimits/<int:pk>/", views.RateLimitDetailView.as_view(), name="ratelimit"),
]
