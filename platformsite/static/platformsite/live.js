// Live dashboard pages: the element #live is refreshed from its fragment whenever its service's
// websocket announces a change of the services shown; polling every 2 s is the fallback while the
// socket is down.  The element says what to watch:
//   data-socket="/ws/discovery/"     the service's websocket
//   data-services="*" or a name      the services shown
//   data-refresh-on="change registry" the message types that mean "fetch the fragment again"
//   data-fragment="/ui/...?fragment=1" (optional) where the fragment is, by default this page's
(function () {
  "use strict";
  var live = document.getElementById("live");
  var state = document.getElementById("live-state");
  if (!live || !live.dataset.socket) { return; }
  var services = live.dataset.services === "*" ? ["*"] : [live.dataset.services];
  var refreshOn = (live.dataset.refreshOn || "change").split(" ");
  var fragment = live.dataset.fragment || window.location.pathname + "?fragment=1";
  var pending = null;
  var polling = null;

  function show(text) {
    if (state) { state.textContent = text; }
  }

  function refresh() {
    if (pending) { return; }
    pending = fetch(fragment, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) { live.innerHTML = html; } })
      .catch(function () {})
      .then(function () { pending = null; });
  }

  function poll() {
    if (polling) { return; }
    show("polling");
    polling = window.setInterval(refresh, 2000);
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket;
    try {
      socket = new WebSocket(scheme + window.location.host + live.dataset.socket);
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
        show("live");
        if (polling) { window.clearInterval(polling); polling = null; }
      } else if (refreshOn.indexOf(message.type) !== -1) {
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
