// tgploy dashboard: keeps a page up to date without reloading it.
//
// Every page works without this file. With it, a page whose <body> names a live feed
// (data-live) follows /live/FEED over Server-Sent Events. Each update carries regions
// (an element's id and the HTML it now holds) and fields (a data-field name and its
// text), rendered by the server with the page's own templates. Only those parts change;
// forms, what is typed into them and the scroll position stay. No framework, no inline
// code, nothing from another origin.
"use strict";

(() => {
  const feed = document.body.dataset.live;
  if (!feed || typeof EventSource !== "function") return;

  const status = document.getElementById("live-status");
  // The HTML each region shows now, so an unchanged one is left alone.
  const shown = new Map();
  let source = null;
  let last = "";
  let ended = false;

  // Says in the page whether it follows the ledger: "on", "wait" or "off".
  const say = (state, text, link) => {
    if (!status || (status.dataset.state === state && status.dataset.text === text)) return;
    status.dataset.state = state;
    status.dataset.text = text;
    status.textContent = text;
    if (link) {
      const a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      status.append(" ", a);
    }
  };

  const apply = (update) => {
    for (const [id, html] of Object.entries(update.regions || {})) {
      const region = document.getElementById(id);
      if (region && shown.get(id) !== html) {
        region.innerHTML = html;
        shown.set(id, html);
      }
    }
    const fields = update.fields || {};
    for (const el of document.querySelectorAll("[data-field]")) {
      const text = fields[el.dataset.field];
      if (text !== undefined && el.textContent !== text) el.textContent = text;
    }
    for (const button of document.querySelectorAll("[data-enabled-by]")) {
      const count = fields[button.dataset.enabledBy];
      if (count !== undefined) button.disabled = count === "0";
    }
    // The buckets page keeps its switches (a code may be half typed): a bucket that
    // appeared or was switched elsewhere is announced instead.
    const changed = document.getElementById("live-buckets-changed");
    if (changed) {
      const rows = new Map([...document.querySelectorAll("tr[data-bucket]")].map((r) => [r.dataset.bucket, r]));
      for (const [name, value] of Object.entries(fields)) {
        const m = /^b:(.*):enabled$/.exec(name);
        if (!m) continue;
        const row = rows.get(m[1]);
        if (!row || row.dataset.enabled !== value) changed.hidden = false;
      }
    }
  };

  const open = () => {
    const url = "/live/" + encodeURIComponent(feed) + (last ? "?since=" + encodeURIComponent(last) : "");
    source = new EventSource(url);
    source.addEventListener("open", () => say("on", "Live"));
    source.addEventListener("update", (event) => {
      if (event.lastEventId) last = event.lastEventId;
      let update;
      try {
        update = JSON.parse(event.data);
      } catch {
        return;
      }
      apply(update);
      say("on", "Live");
    });
    source.addEventListener("end", (event) => {
      ended = true;
      source.close();
      say("off", event.data === "expired" ? "Session ended:" : "Signed out:", { href: "/login?expired=1", text: "sign in" });
    });
    source.addEventListener("error", () => {
      if (ended) return;
      if (source.readyState === EventSource.CLOSED) {
        say("off", "Stopped:", { href: location.pathname + location.search, text: "reload" });
      } else {
        say("wait", "Reconnecting…");
      }
    });
  };

  // A hidden page lets go of its stream, and picks up where it was when shown again.
  document.addEventListener("visibilitychange", () => {
    if (ended) return;
    if (document.hidden && source) {
      source.close();
      source = null;
      say("wait", "Paused");
    } else if (!document.hidden && !source) {
      open();
    }
  });

  if (!document.hidden) open();
})();
