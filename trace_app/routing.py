from django.urls import path

from trace_app.consumers import TraceStreamConsumer

websocket_urlpatterns = [path("ws/trace/", TraceStreamConsumer.as_asgi())]
