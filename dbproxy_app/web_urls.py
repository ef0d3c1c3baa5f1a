from django.urls import path

from dbproxy_app import web

app_name = "db"

urlpatterns = [
    path("", web.index, name="index"),
    path("<str:database>/", web.database_detail, name="database"),
    path("<str:database>/<str:table>/", web.table_detail, name="table"),
]
