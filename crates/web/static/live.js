// tiendo: live updates. The page names what it shows in <main data-watch="i:… u:… d:…">; when
// the server says (server-sent events, fed from NATS) that something it shows changed, the page
// fetches itself again and swaps in the new <main>. No polling, no reload, no framework.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var state = document.getElementById("live-state");
  if (!main || !window.EventSource || !window.fetch || !window.DOMParser) return;

  var timer = null, busy = false, again = false;

  function watched(tags) {
    var watch = (main.getAttribute("data-watch") || "").split(" ");
    if (watch.indexOf("*") >= 0) return true;
    for (var i = 0; i < tags.length; i++) {
      if (watch.indexOf(tags[i]) >= 0) return true;
    }
    return false;
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (!fresh) return;
        main.innerHTML = fresh.innerHTML;
        main.setAttribute("data-watch", fresh.getAttribute("data-watch") || "");
        main.setAttribute("data-generated", fresh.getAttribute("data-generated") || "");
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  function live(ok) {
    if (!state) return;
    state.textContent = state.getAttribute(ok ? "data-ok" : "data-lost");
    state.setAttribute("data-connected", ok ? "true" : "false");
  }

  var events = new EventSource("/events");
  events.onopen = function () { live(true); };
  events.onerror = function () { live(false); };
  events.onmessage = function (e) {
    var ev;
    try { ev = JSON.parse(e.data); } catch (_) { return; }
    if (ev.kind === "refresh" || watched(ev.tags || [])) {
      clearTimeout(timer);
      timer = setTimeout(refresh, 150);
    }
  };
})();
