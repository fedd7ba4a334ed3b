// Loa Phường dashboard: the only script. Live progress of a broadcast (polls its JSON once a second
// while it is queued or sending; the page works without it, a reload shows the same figures).
"use strict";
(function () {
  var box = document.getElementById("progress");
  if (!box) return;
  var url = box.getAttribute("data-url");
  var names = {draft: "nháp", queued: "chờ gửi", sending: "đang gửi", done: "đã xong", cancelled: "đã hủy"};
  function set(id, value) { var el = document.getElementById(id); if (el) el.textContent = value; }
  function tick() {
    fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (r) { return r.json(); }).then(function (p) {
      ["total", "sent", "pending", "failed", "acknowledged", "percent"].forEach(function (k) { set(k, p[k]); });
      set("status", names[p.status] || p.status);
      var meter = document.getElementById("meter");
      if (meter) meter.value = p.percent;
      box.setAttribute("data-status", p.status);
      if (p.status === "queued" || p.status === "sending") setTimeout(tick, 1000);
    }).catch(function () { setTimeout(tick, 5000); });
  }
  var status = box.getAttribute("data-status");
  if (status === "queued" || status === "sending") setTimeout(tick, 500);
})();
