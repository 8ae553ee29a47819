// The console's only script: the page works without it. It shows times in the officer's own time zone
// (the UTC time stays in the title), and refreshes the part of a page marked data-live in place, so that
// states and new messages appear without reloading. A 401 means the session ended: reload to sign in.
(function () {
  "use strict";
  var SECONDS = 5;

  function localise(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i += 1) {
      var moment = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(moment.getTime())) {
        times[i].textContent = moment.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
      }
    }
  }

  function live(region) {
    var source = region.getAttribute("data-live");
    var busy = false;
    window.setInterval(function () {
      if (busy || document.hidden || region.contains(document.activeElement)) {
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
            var parsed = new DOMParser().parseFromString(html, "text/html");
            region.replaceChildren.apply(region, Array.prototype.slice.call(parsed.body.childNodes));
            localise(region);
            region.setAttribute("data-updated", new Date().toISOString());
          }
        })
        .catch(function () {
          region.setAttribute("data-stale", "true");
        })
        .finally(function () {
          busy = false;
        });
    }, SECONDS * 1000);
  }

  localise(document);
  var regions = document.querySelectorAll("[data-live]");
  for (var i = 0; i < regions.length; i += 1) {
    live(regions[i]);
  }
  var problem = document.getElementById("problem");
  if (problem) {
    problem.focus();
  }
})();
