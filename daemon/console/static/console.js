// dirsync console: keeps the live regions of a page current without
// reloading it. Each element with data-live="<url>" is refreshed from
// that URL (an HTML fragment the console renders) every second, until
// the answer says X-Dirsync-Final (a job that ended). Without
// JavaScript the page is the same, only still.
"use strict";
(function () {
  const every = 1000;
  function watch(el) {
    const url = el.getAttribute("data-live");
    let busy = false;
    const timer = setInterval(async function () {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const resp = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
        if (resp.status === 401) {
          clearInterval(timer);
          window.location.assign("/console/login");
          return;
        }
        if (!resp.ok) return;
        const html = await resp.text();
        if (el.innerHTML !== html) el.innerHTML = html;
        if (resp.headers.get("X-Dirsync-Final") === "true") clearInterval(timer);
      } catch (e) {
        // The daemon restarting or the network gone: try again next tick.
      } finally {
        busy = false;
      }
    }, every);
  }
  function start() {
    document.querySelectorAll("[data-live]").forEach(watch);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
