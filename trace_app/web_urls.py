from django.urls import path

from trace_app import web

app_name = "trace"

urlpatterns = [
    path("", web.index, name="index"),
    path("graph/", web.graph, name="graph"),
    path("compare/", web.compare, name="compare"),
    path("<str:trace_id>/", web.trace, name="trace"),
]
