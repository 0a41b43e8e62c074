// The review page's own script: timelines (hover shows the local time, click plays that moment) and the player
// (seek to the moment once the metadata is in, then play; the incident time follows the playing moment).
(function () {
  "use strict";
  const formats = {};
  function hms(ms, tz) {
    if (!formats[tz]) {
      formats[tz] = new Intl.DateTimeFormat("en-GB", {timeZone: tz, hour: "2-digit", minute: "2-digit",
        second: "2-digit", hourCycle: "h23"});
    }
    return formats[tz].format(new Date(ms));
  }
  function data() { return document.getElementById("session-data"); }
  function windowOf() {
    const d = data();
    return d ? {startMs: Number(d.dataset.startMs), seconds: Number(d.dataset.seconds), tz: d.dataset.tz} : null;
  }
  function offsetAt(track, clientX) {
    const r = track.getBoundingClientRect();
    const f = Math.min(Math.max((clientX - r.left) / r.width, 0), 1);
    return f * windowOf().seconds;
  }
  function segmentAt(track, offset) {
    for (const s of track.querySelectorAll(".seg")) {
      if (Number(s.dataset.start) <= offset && offset < Number(s.dataset.end)) return s;
    }
    return null;
  }

  document.addEventListener("mousemove", function (e) {
    const track = e.target.closest && e.target.closest(".track");
    document.querySelectorAll(".track .hover:not([hidden])").forEach(function (h) {
      if (!track || h.parentElement !== track) h.hidden = true;
    });
    if (!track) return;
    const w = windowOf();
    const off = offsetAt(track, e.clientX);
    const hover = track.querySelector(".hover");
    const seg = segmentAt(track, off);
    hover.textContent = hms(w.startMs + off * 1000, w.tz) + (seg ? " · " + seg.dataset.words : "");
    hover.style.left = (100 * off / w.seconds) + "%";
    hover.classList.toggle("flip", off > w.seconds * 0.6);
    hover.hidden = false;
  });

  function play(room, view, offset) {
    const form = document.getElementById("play-form");
    if (!form) return;
    form.elements.room.value = room;
    form.elements.view.value = view;
    form.elements.offset.value = offset.toFixed(3);
    showCursor(room, view, offset);
    htmx.trigger(form, "submit");
  }
  function showCursor(room, view, offset) {
    const w = windowOf();
    document.querySelectorAll(".track").forEach(function (t) {
      const c = t.querySelector(".cursor");
      const mine = t.dataset.room === room && t.dataset.view === view;
      c.hidden = !mine;
      if (mine) {
        c.style.left = (100 * Math.min(Math.max(offset, 0), w.seconds) / w.seconds) + "%";
        t.setAttribute("aria-valuenow", offset.toFixed(0));
      }
    });
  }
  document.addEventListener("click", function (e) {
    const track = e.target.closest && e.target.closest(".track");
    if (!track) return;
    const marker = e.target.closest(".marker");
    play(track.dataset.room, track.dataset.view, marker ? Number(marker.dataset.at) : offsetAt(track, e.clientX));
  });
  document.addEventListener("keydown", function (e) {
    const track = e.target.closest && e.target.closest(".track");
    if (!track || (e.key !== "Enter" && e.key !== " ")) return;
    e.preventDefault();
    play(track.dataset.room, track.dataset.view, Number(track.getAttribute("aria-valuenow") || 0));
  });

  function setupVideo(video) {
    const seek = Number(video.dataset.seek);
    const startMs = Number(video.dataset.startMs);
    const tz = video.dataset.tz;
    const at = document.getElementById("incident-at");
    if (at) at.addEventListener("input", function () { at.dataset.edited = "1"; });
    function go() {
      video.currentTime = seek;
      const p = video.play();
      if (p && p.catch) p.catch(function () { /* the controls still let the supervisor start it */ });
    }
    if (video.readyState >= 1) go(); else video.addEventListener("loadedmetadata", go, {once: true});
    video.addEventListener("timeupdate", function () {
      const ms = startMs + video.currentTime * 1000;
      const now = document.getElementById("now-local");
      if (now) now.textContent = hms(ms, tz);
      if (at && !at.dataset.edited) at.value = hms(ms, tz);
      const w = windowOf();
      if (w) showCursor(video.dataset.room, video.dataset.view, (ms - w.startMs) / 1000);
    });
  }
  // an incident was stored: clear the note, and let the time follow the player again
  document.addEventListener("htmx:afterRequest", function (e) {
    const form = e.target;
    if (form.id !== "incident-form" || !e.detail.successful) return;
    form.elements.note.value = "";
    delete form.elements.at.dataset.edited;
  });
  // positions come as data attributes and are set here: the page's CSP allows no inline style attributes
  function place(el) {
    const all = el.matches && el.matches("[data-left]") ? [el] : [];
    all.concat(Array.from(el.querySelectorAll ? el.querySelectorAll("[data-left]") : [])).forEach(function (n) {
      n.style.left = n.dataset.left + "%";
      if (n.dataset.width !== undefined) n.style.width = n.dataset.width + "%";
    });
  }
  htmx.onLoad(function (el) {
    place(el);
    const videos = el.matches && el.matches("video[data-seek]") ? [el] : el.querySelectorAll("video[data-seek]");
    videos.forEach(setupVideo);
    // one column (phone, narrow window): the player is below the timelines, bring it into view
    if (videos.length && window.matchMedia("(max-width: 1100px)").matches) {
      document.getElementById("player-panel").scrollIntoView({behavior: "smooth", block: "start"});
    }
  });
})();
