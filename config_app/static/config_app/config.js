// The config dashboard: resolved view (live over /ws/config/, long-poll fallback), layer editor,
// history with diffs and rollback.  Vanilla JS; the staff session authenticates every call.
(function () {
  "use strict";
  const root = document.getElementById("config-app");
  const ns = root.dataset.namespace;
  const env = root.dataset.env;
  const csrf = root.querySelector("[name=csrfmiddlewaretoken]").value;
  const base = "/api/v1/config/namespaces/" + encodeURIComponent(ns) + "/";
  const $ = (id) => document.getElementById(id);
  let resolvedRevision = null;
  let layerRevision = 0;
  let ownWrite = false;
  // The environments of this namespace with a layer written: only those are asked for (an
  // unwritten layer answers 404, which the browser logs as an error).
  const written = new Set(JSON.parse($("config-written").textContent));

  async function api(method, path, body) {
    const init = {method, credentials: "same-origin", headers: {"Accept": "application/json"}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRFToken"] = csrf;
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    if (response.status !== 204 && response.status !== 304) {
      data = await response.json().catch(() => null);
    }
    return {status: response.status, ok: response.ok, body: data};
  }

  function errorText(result) {
    const error = result.body && result.body.error;
    if (!error) return "HTTP " + result.status;
    let text = error.message;
    if (error.details && error.details.paths) text += " (" + error.details.paths.join(", ") + ")";
    return text;
  }

  function showResolved(body, fromOthers) {
    const changed = resolvedRevision !== null && body.revision !== resolvedRevision;
    resolvedRevision = body.revision;
    $("resolved-revision").textContent = body.revision;
    const used = Object.entries(body.revisions).filter(([, v]) => v > 0);
    $("resolved-layers").textContent = used.map(([k, v]) => k + "@" + v).join(" ");
    $("resolved-from").hidden = used.length === 0;
    $("resolved-none").hidden = used.length > 0;
    for (const [key] of used) if (key.startsWith(ns + "/")) written.add(key.slice(ns.length + 1));
    $("resolved").textContent = JSON.stringify(body.data, null, 2);
    if (changed && fromOthers && !ownWrite) {
      $("live-notice").textContent = "Updated to revision " + body.revision + " by another change.";
      loadHistory();
      if (!editorDirty()) loadLayer();
    }
    ownWrite = false;
  }

  async function loadResolved() {
    const result = await api("GET", base + "resolve?env=" + encodeURIComponent(env));
    if (result.ok) showResolved(result.body, false);
    else $("resolved").textContent = errorText(result);
  }

  // Live updates: the websocket, or long-polling when it cannot be opened.
  function live() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let opened = false;
    let socket;
    try {
      socket = new WebSocket(scheme + location.host + "/ws/config/");
    } catch (e) {
      return longPoll();
    }
    socket.onopen = () => {
      opened = true;
      socket.send(JSON.stringify({type: "subscribe", namespace: ns, env: env}));
      $("live-status").textContent = "live (websocket)";
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "config" && message.namespace === ns && message.env === env) showResolved(message, true);
    };
    socket.onclose = () => {
      if (opened) setTimeout(live, 1000);
      else longPoll();
    };
  }

  async function longPoll() {
    $("live-status").textContent = "live (long-poll)";
    for (;;) {
      try {
        const query = "?env=" + encodeURIComponent(env) + "&wait=30s&revision=" + (resolvedRevision || 0);
        const result = await api("GET", base + "resolve" + query);
        if (result.status === 200) showResolved(result.body, true);
        else if (result.status !== 304) await new Promise((r) => setTimeout(r, 2000));
      } catch (e) {
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  // The layer editor.
  let loadedText = "";
  function editorDirty() { return $("editor").value !== loadedText; }
  function layerEnv() { return $("layer-env").value; }
  function layerPath() { return base + "layers/" + encodeURIComponent(layerEnv()) + "/"; }

  async function loadLayer() {
    const result = written.has(layerEnv()) ? await api("GET", layerPath()) : {ok: false, status: 404};
    if (result.status === 404) written.delete(layerEnv());
    const data = result.ok ? result.body.data : {};
    layerRevision = result.ok ? result.body.revision : 0;
    loadedText = JSON.stringify(data, null, 2);
    $("editor").value = loadedText;
    $("layer-revision").textContent = layerRevision;
    $("editor-error").textContent = "";
  }

  async function save() {
    $("editor-error").textContent = "";
    $("editor-ok").textContent = "";
    let data;
    try {
      data = JSON.parse($("editor").value);
    } catch (e) {
      $("editor-error").textContent = "Invalid JSON: " + e.message;
      return;
    }
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      $("editor-error").textContent = "A layer must be a JSON object.";
      return;
    }
    ownWrite = true;
    const result = await api("PUT", layerPath(), {
      data, comment: $("comment").value, source: "dashboard", expected_revision: layerRevision,
    });
    if (result.status === 409) {
      ownWrite = false;
      written.add(layerEnv());  // written by another change meanwhile
      const current = result.body.error.details.current;
      $("editor-error").textContent = "Conflict: the layer is now at revision " + current +
        " (you edited revision " + layerRevision + "). Reload to see the other change; your text is kept until then.";
      return;
    }
    if (!result.ok) {
      ownWrite = false;
      $("editor-error").textContent = errorText(result);
      return;
    }
    written.add(layerEnv());
    layerRevision = result.body.revision;
    loadedText = JSON.stringify(result.body.data, null, 2);
    $("editor").value = loadedText;
    $("layer-revision").textContent = layerRevision;
    $("editor-ok").textContent = "Saved revision " + layerRevision + ".";
    $("comment").value = "";
    loadHistory();
    loadResolved();
  }

  // History, diffs, rollback.
  async function loadHistory() {
    $("history-layer").textContent = ns + "/" + layerEnv();
    const result = written.has(layerEnv())
      ? await api("GET", layerPath() + "revisions/?page_size=50") : {ok: false, status: 404};
    const tbody = $("history").querySelector("tbody");
    tbody.replaceChildren();
    const revisions = result.ok ? result.body.results : [];
    if (revisions.length === 0) {  // a layer not written yet answers 404
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 6;
      cell.className = "muted";
      cell.textContent = result.ok || result.status === 404
        ? "No revision yet: saving the layer writes revision 1." : errorText(result);
      row.appendChild(cell);
      tbody.appendChild(row);
    }
    for (const rev of revisions) {
      const row = document.createElement("tr");
      row.dataset.revision = rev.revision;
      for (const value of [rev.revision, window.platformTime(rev.created), rev.author, rev.comment, rev.source]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.appendChild(cell);
      }
      const actions = document.createElement("td");
      const diffButton = document.createElement("button");
      diffButton.type = "button";
      diffButton.className = "diff";
      diffButton.textContent = "Diff";
      diffButton.onclick = () => showDiff(rev.revision);
      actions.appendChild(diffButton);
      if (rev.revision !== layerRevision) {
        const rollback = document.createElement("button");
        rollback.type = "button";
        rollback.className = "rollback";
        rollback.textContent = "Roll back to this";
        rollback.onclick = () => rollbackTo(rev.revision);
        actions.appendChild(rollback);
      }
      row.appendChild(actions);
      tbody.appendChild(row);
    }
    $("history").dataset.layerRevision = layerRevision;  // which head this rendering belongs to
  }

  async function showDiff(number) {
    const result = await api("GET", layerPath() + "diff?from=" + (number - 1) + "&to=" + number);
    if (!result.ok) { $("diff").textContent = errorText(result); return; }
    const lines = ["Revision " + (number - 1) + " → " + number];
    for (const item of result.body.added) lines.push("+ " + item.path + " = " + JSON.stringify(item.value));
    for (const item of result.body.removed) lines.push("- " + item.path + " (was " + JSON.stringify(item.value) + ")");
    for (const item of result.body.changed) lines.push("~ " + item.path + ": " + JSON.stringify(item.from) + " → " + JSON.stringify(item.to));
    $("diff").textContent = lines.join("\n");
  }

  async function rollbackTo(number) {
    ownWrite = true;
    const result = await api("POST", layerPath() + "rollback", {revision: number, expected_revision: layerRevision});
    if (!result.ok) {
      ownWrite = false;
      $("editor-error").textContent = errorText(result);
      return;
    }
    $("editor-ok").textContent = "Rolled back to revision " + number + " as revision " + result.body.revision + ".";
    await loadLayer();
    loadHistory();
    loadResolved();
  }

  $("save").addEventListener("click", save);
  // Reload asks the server even for a layer not known to be written (another change may have written it).
  $("reload-layer").addEventListener("click", () => { written.add(layerEnv()); loadLayer().then(loadHistory); });
  $("layer-env").addEventListener("change", () => loadLayer().then(loadHistory));
  // Both environment pickers are GET forms (?env=...): the list switches as soon as it is changed.
  $("env-select").addEventListener("change", () => $("env-form").submit());

  loadResolved().then(live);
  loadLayer().then(loadHistory);
})();
