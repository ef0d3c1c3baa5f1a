from django.urls import path

from auth_app.api import views
from auth_app.api.views import CheckView
from auth_app.api.whoami import WhoAmIView
from platformsite.api.views import ServiceRootView

app_name = "auth_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="auth"), name="root"),
    path("whoami/", WhoAmIView.as_view(), name="whoami"),
    path("check/", CheckView.as_view(), name="check"),
    path("accounts/", views.AccountListView.as_view(), name="accounts"),
    path("accounts/<str:name>/", views.AccountDetailView.as_view(), name="account"),
    path(
        "accounts/<str:name>/rotate-secret/", views.AccountRotateSecretView.as_view(), name="account-rotate"
    ),
    path("accounts/<str:name>/disable/", views.AccountDisableView.as_view(), name="account-disable"),
    path("accounts/<str:name>/enable/", views.AccountEnableView.as_view(), name="account-enable"),
    path("roles/", views.RoleListView.as_view(), name="roles"),
    path("roles/<slug:name>/", views.RoleDetailView.as_view(), name="role"),
    path("rules/", views.RuleListView.as_view(), name="rules"),
    path("rules/<int:pk>/", views.RuleDetailView.as_view(), name="rule"),
    path("bindings/", views.BindingListView.as_view(), name="bindings"),
    path("bindings/<int:pk>/", views.BindingDetailView.as_view(), name="binding"),
    path("keys/", views.KeyListView.as_view(), name="keys"),
]
