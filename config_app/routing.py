from django.urls import path

from config_app.consumers import ConfigConsumer

websocket_urlpatterns = [path("ws/config/", ConfigConsumer.as_asgi())]
