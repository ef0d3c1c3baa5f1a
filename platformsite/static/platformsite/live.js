// Live dashboard pages: the element #live is refreshed from its fragment whenever its service's
// websocket announces a change of the services shown; polling every 2 s is the fallback while the
// socket is down.  The element says what to watch:
//   data-socket="/ws/discovery/"     the service's websocket
//   data-services="*" or a name      the services shown
//   data-refresh-on="change registry" the message types that mean "fetch the fragment again"
//   data-fragment="/ui/...?fragment=1" (optional) where the fragment is, by default this page's
//   data-refresh-every="10"          (optional) also fetch it every that many seconds while the page
//                                    is shown: for figures that move without an announced change
//                                    (stats, evaluations, heartbeats)
// In the fragment, an element with data-age="N" (seconds, as the server counted them) shows its
// age growing every second until the next fetch, so that "1 s" never stands still on a live page.
// A form field inside #live that has the focus or holds an unsaved change is never redrawn away:
// refreshes wait (the state says "paused while you edit") and resume once no field is edited.
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

  var mode = "connecting…";
  var deferred = false;

  function show(text) {
    mode = text;
    if (state) { state.textContent = deferred ? text + " · paused while you edit" : text; }
  }

  function editing() {
    var fields = live.querySelectorAll("input, select, textarea");
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      if (field.type === "hidden") { continue; }
      if (field === document.activeElement) { return true; }
      var changed = field.type === "checkbox" || field.type === "radio"
        ? field.checked !== field.defaultChecked : field.value !== field.defaultValue;
      if (changed) { return true; }
    }
    return false;
  }

  function resume() {
    window.setTimeout(function () {
      if (deferred && !editing()) { deferred = false; show(mode); refresh(); }
    }, 0);
  }
  live.addEventListener("focusout", resume);
  live.addEventListener("input", resume);

  var loadedAt = Date.now();

  function refresh() {
    if (pending) { return; }
    if (editing()) {
      if (!deferred) { deferred = true; show(mode); }
      return;
    }
    pending = fetch(fragment, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null) { live.innerHTML = html; loadedAt = Date.now(); }
      })
      .catch(function () {})
      .then(function () { pending = null; });
  }

  // Seconds as the template filter "age" writes them: the two largest units ("2 min 11 s").
  var UNITS = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
  function formatAge(total) {
    var seconds = Math.max(Math.floor(total), 0), parts = [];
    for (var i = 0; i < UNITS.length && parts.length < 2; i++) {
      var size = UNITS[i][0];
      if (seconds >= size || (size === 1 && parts.length === 0)) {
        parts.push(Math.floor(seconds / size) + " " + UNITS[i][1]);
        seconds %= size;
      } else if (parts.length) {
        parts.push("0 " + UNITS[i][1]);
      }
    }
    return parts.join(" ");
  }

  function tickAges() {
    var elapsed = Math.floor((Date.now() - loadedAt) / 1000);
    var ages = live.querySelectorAll("[data-age]");
    for (var i = 0; i < ages.length; i++) {
      ages[i].textContent = formatAge(Number(ages[i].dataset.age) + elapsed);
    }
  }

  window.setInterval(tickAges, 1000);
  var every = Number(live.dataset.refreshEvery || 0);
  if (every > 0) {
    window.setInterval(function () {
      if (document.visibilityState === "visible") { refresh(); }
    }, every * 1000);
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
