"""Dashboard URLs: the shell, and each service's own pages (``<app>/web_urls.py``) under /ui/<name>/."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from auth_app.forms import StaffSignInForm
from platformsite import web
from platformsite.services import served_services

app_name = "ui"

urlpatterns = [
    path("", web.index, name="index"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="platformsite/login.html", authentication_form=StaffSignInForm
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
# A service with pages of its own serves them (its index at /ui/<name>/, namespaced "ui:<name>:...");
# the others get the generic service page.
urlpatterns += [
    path(f"{service.name}/", include(service.part("web_urls")))
    for service in served_services()
    if service.config.web_urls
]
urlpatterns.append(path("<slug:name>/", web.service_page, name="service"))
