from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.urls import path

from platformsite import web

app_name = "ui"

urlpatterns = [
    path("", web.index, name="index"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="platformsite/login.html", authentication_form=AdminAuthenticationForm
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("<slug:name>/", web.service_page, name="service"),
]
