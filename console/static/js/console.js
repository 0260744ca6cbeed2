/* govsoc console behaviour: select-all in the queue and the queue's live refresh.
   Values from the server are put into the page with textContent, never as HTML. */
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function badge(text, className) {
    var span = document.createElement("span");
    span.className = "badge " + className;
    span.textContent = text;
    return span;
  }

  function liveQueue(table) {
    var since = table.getAttribute("data-since");
    var url = table.getAttribute("data-updates-url");
    var notice = document.getElementById("fresh-notice");
    var counter = document.getElementById("fresh-count");
    var fresh = 0;
    var known = {};
    Array.prototype.forEach.call(table.querySelectorAll("tr[data-alert-id]"), function (row) {
      known[row.getAttribute("data-alert-id")] = true;
    });
    function poll() {
      var sep = url.indexOf("?") >= 0 ? "&" : "?";
      fetch(url + sep + "since=" + encodeURIComponent(since), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          since = data.now;
          Object.keys(data.counts || {}).forEach(function (status) {
            var el = document.getElementById("count-" + status);
            if (el) { el.textContent = String(data.counts[status]); }
          });
          var body = table.tBodies[0];
          var empty = body.querySelector("tr.empty");
          (data.alerts || []).slice().reverse().forEach(function (alert) {
            if (known[alert.id]) { return; }
            known[alert.id] = true;
            if (empty) { empty.remove(); empty = null; }
            var row = document.createElement("tr");
            row.className = "fresh";
            row.setAttribute("data-alert-id", alert.id);
            var pick = document.createElement("input");
            pick.type = "checkbox"; pick.name = "selected"; pick.value = alert.id + "@" + alert.version;
            cell(row, "").appendChild(pick);
            cell(row, "").appendChild(badge(alert.severity_label, "sev-" + alert.severity));
            cell(row, "").appendChild(badge(alert.status_label, "st-" + alert.status));
            var link = document.createElement("a");
            link.href = alert.url; link.textContent = alert.rule_name;
            cell(row, "").appendChild(link);
            cell(row, alert.host, "mono");
            cell(row, alert.user, "mono");
            cell(row, alert.source_ip, "mono");
            cell(row, String(alert.count), "num");
            cell(row, alert.assignee);
            cell(row, alert.last_seen);
            body.insertBefore(row, body.firstChild);
            fresh += 1;
          });
          if (fresh && notice && counter) {
            counter.textContent = String(fresh);
            notice.classList.remove("hidden");
          }
        })
        .catch(function () { /* the next poll tries again */ });
    }
    var every = parseInt(table.getAttribute("data-poll-ms") || "15000", 10);
    window.setInterval(poll, every);
  }

  onReady(function () {
    var all = document.getElementById("select-all");
    if (all) {
      all.addEventListener("change", function () {
        Array.prototype.forEach.call(document.querySelectorAll("input[name=selected]"), function (box) {
          box.checked = all.checked;
        });
      });
    }
    var table = document.getElementById("alert-table");
    if (table && table.getAttribute("data-updates-url") && window.fetch) { liveQueue(table); }
  });
})();
