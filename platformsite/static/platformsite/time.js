// Times on every dashboard read the same: UTC, to the second, with a Z (2026-12-04T10:00:00Z).
// platformTime(value) takes an ISO 8601 string, a Date or a Unix timestamp in seconds; anything
// it cannot read is returned as it was.  The server side is the `utc` template filter.
(function () {
  "use strict";
  function platformTime(value) {
    if (value === null || value === undefined || value === "") return "";
    let moment;
    if (value instanceof Date) moment = value;
    else if (typeof value === "number") moment = new Date(value * 1000);
    else if (typeof value === "string") {
      // Date() reads at most milliseconds: drop the digits beyond them (seconds are shown anyway).
      moment = new Date(value.trim().replace(/(\.\d{3})\d+/, "$1"));
    } else return String(value);
    if (isNaN(moment.getTime())) return String(value);
    return moment.toISOString().replace(/\.\d{3}Z$/, "Z");
  }
  window.platformTime = platformTime;
})();
