// Live router pages: a websocket watch of the services shown, with polling as the fallback.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var state = document.getElementById("live-state");
  if (!live) { return; }
  var services = live.dataset.services === "*" ? ["*"] : [live.dataset.services];
  var pending = null;
  var polling = null;

  function refresh() {
    if (pending) { return; }
    pending = fetch(window.location.pathname + "?fragment=1", { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) { live.innerHTML = html; } })
      .catch(function () {})
      .then(function () { pending = null; });
  }

  function poll() {
    if (polling) { return; }
    state.textContent = "polling";
    polling = window.setInterval(refresh, 2000);
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket;
    try {
      socket = new WebSocket(scheme + window.location.host + "/ws/router/");
    } catch (error) {
      poll();
      return;
    }
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "subscribe", services: services }));
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "subscribed") {
        state.textContent = "live";
        if (polling) { window.clearInterval(polling); polling = null; }
      } else if (message.type === "change") {
        refresh();
      }
    };
    socket.onclose = function () {
      poll();
      window.setTimeout(connect, 10000);
    };
  }

  connect();
})();
