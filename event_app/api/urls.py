from django.urls import path

from event_app.api import views

app_name = "event_app"

urlpatterns = [
    path("", views.EventListView.as_view(), name="root"),
    path("summary", views.SummaryWithoutSlashView.as_view(), name="summary-noslash"),
    path("summary/", views.SummaryView.as_view(), name="summary"),
    path("subscriptions/", views.SubscriptionListView.as_view(), name="subscriptions"),
    path("subscriptions/<slug:name>/", views.SubscriptionDetailView.as_view(), name="subscription"),
    path(
        "subscriptions/<slug:name>/deliveries/",
        views.SubscriptionDeliveriesView.as_view(),
        name="subscription-deliveries",
    ),
    path(
        "subscriptions/<slug:name>/redeliver/",
        views.SubscriptionRedeliverView.as_view(),
        name="subscription-redeliver",
    ),
    path("<int:pk>/", views.EventDetailView.as_view(), name="event"),
    path("<int:pk>/deliveries/", views.EventDeliveriesView.as_view(), name="event-deliveries"),
]
