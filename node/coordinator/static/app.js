// Refresh the live part of the coordinator dashboard in place, every data-refresh seconds.
// Same origin only (the page's Content Security Policy allows nothing else); a 401 means the session
// ended, so the page reloads to show the sign-in form.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) {
    return;
  }
  var seconds = Math.max(1, parseInt(live.getAttribute("data-refresh") || "10", 10));
  var source = live.getAttribute("data-src");
  var busy = false;

  function refresh() {
    if (busy) {
      return;
    }
    busy = true;
    fetch(source, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) {
          window.location.reload();
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          live.innerHTML = html;
          live.setAttribute("data-updated", new Date().toISOString());
        }
      })
      .catch(function () {
        live.setAttribute("data-stale", "true");
      })
      .finally(function () {
        busy = false;
      });
  }

  window.setInterval(refresh, seconds * 1000);
})();
