// Live changes of one table: the db.record.* events of its subject prefix, over /ws/events/
// (a bulk call's db.record.batch events list its records: one row each).
(function () {
  "use strict";
  var section = document.getElementById("changes");
  if (!section) { return; }
  var rows = document.getElementById("change-rows");
  var state = document.getElementById("changes-state");
  var prefix = section.dataset.subjectPrefix;

  function row(kind, id, version, time) {
    var line = document.createElement("tr");
    [kind, id, version === undefined ? undefined : String(version), time].forEach(function (text) {
      var cell = document.createElement("td");
      cell.textContent = text === undefined ? "" : text;
      line.appendChild(cell);
    });
    rows.insertBefore(line, rows.firstChild);
  }

  function add(event) {
    var waiting = rows.querySelector(".waiting");
    if (waiting) { waiting.remove(); }
    var data = event.data || {};
    if (event.type === "db.record.batch") {
      ["created", "updated", "deleted"].forEach(function (kind) {
        (data[kind] || []).slice(-50).forEach(function (item) { row(kind, item.id, item.version, window.platformTime(event.time)); });
      });
    } else {
      row(event.type.replace("db.record.", ""), data.id, data.version, window.platformTime(event.time));
    }
    while (rows.children.length > 50) { rows.removeChild(rows.lastChild); }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var query = "types=db.record.*&subject_prefix=" + encodeURIComponent(prefix);
    var socket = new WebSocket(scheme + window.location.host + "/ws/events/?" + query);
    socket.onmessage = function (message) {
      var data = JSON.parse(message.data);
      if (data.type === "subscribed") { state.textContent = "live"; }
      else if (data.type === "event") { add(data.event); }
      else if (data.type === "error") { state.textContent = "error: " + (data.message || (data.error || {}).message); }
    };
    socket.onclose = function () {
      state.textContent = "reconnecting…";
      window.setTimeout(connect, 5000);
    };
  }

  connect();
})();
