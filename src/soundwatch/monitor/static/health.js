// The service's health (/healthz): a banner with the reasons while it is degraded.
// Kept apart from app.js; every reason is set as text (never parsed as HTML).
"use strict";
(function () {
  const banner = document.createElement("div");
  banner.id = "health";
  banner.hidden = true;
  banner.setAttribute("role", "alert");
  banner.style.cssText = "background:#7a2e12;color:#fff;padding:.5rem 1rem;font-size:.9rem";
  document.body.insertBefore(banner, document.body.firstChild);

  function show(status, reasons) {
    banner.replaceChildren();
    if (status === "ok") { banner.hidden = true; return; }
    const title = document.createElement("b");
    title.textContent = "service " + status;
    banner.appendChild(title);
    const list = document.createElement("ul");
    list.style.margin = ".25rem 0 0";
    for (const reason of reasons) {
      const item = document.createElement("li");
      item.textContent = reason;
      list.appendChild(item);
    }
    banner.appendChild(list);
    banner.hidden = false;
  }

  async function check() {
    try {
      const res = await fetch("/healthz", { cache: "no-store" });
      const body = await res.json();
      if (res.ok) show(body.status, body.reasons || []);
      else show("unavailable", [body.error || ("HTTP " + res.status)]);
    } catch (e) {
      show("unreachable", [String(e.message || e)]);
    }
  }
  check();
  setInterval(check, 10000);
})();
