"use strict";
// Shared by the station's pages: the words (from the page), text size and contrast (kept in this browser), the API.
(() => {
  const t = JSON.parse(document.getElementById("i18n").textContent);
  const lang = document.body.dataset.lang || "zh";
  const html = document.documentElement;
  const FONT_KEY = "qbank-station-font", CONTRAST_KEY = "qbank-station-contrast";
  let font = Number(localStorage.getItem(FONT_KEY) || "0");

  function setFont(n) {
    font = Math.max(0, Math.min(4, n));
    html.dataset.font = String(font);
    localStorage.setItem(FONT_KEY, String(font));
  }
  function setContrast(on) {
    document.body.classList.toggle("contrast", on);
    localStorage.setItem(CONTRAST_KEY, on ? "1" : "0");
    const b = document.getElementById("contrast");
    if (b) b.setAttribute("aria-pressed", on ? "true" : "false");
  }
  setFont(font);
  setContrast(localStorage.getItem(CONTRAST_KEY) === "1");
  document.getElementById("font-smaller").addEventListener("click", () => setFont(font - 1));
  document.getElementById("font-larger").addEventListener("click", () => setFont(font + 1));
  document.getElementById("contrast").addEventListener("click",
    () => setContrast(!document.body.classList.contains("contrast")));

  function fmt(template, vars) {
    return template.replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? String(vars[k]) : `{${k}}`));
  }
  // {ok, status, body}; status 0 when the station could not be reached.
  async function api(method, url, body) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 10000);
    try {
      const r = await fetch(url, {
        method, credentials: "same-origin", signal: ctl.signal, cache: "no-store",
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      let data = {};
      try { data = await r.json(); } catch (e) { data = {}; }
      return { ok: r.ok, status: r.status, body: data };
    } catch (e) {
      return { ok: false, status: 0, body: {} };
    } finally {
      clearTimeout(timer);
    }
  }
  // The reason of a refusal in the reader's language.
  function reason(r) {
    if (r.status === 0) return t.network;
    const b = r.body || {};
    return (lang === "en" ? b.detail : b.detail_zh) || b.detail || `HTTP ${r.status}`;
  }
  function say(el, text, ok) {
    el.textContent = text;
    el.hidden = !text;
    el.classList.toggle("ok", !!ok);
  }
  function clock(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const p = (n) => String(n).padStart(2, "0");
    return `${p(Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}`;
  }
  window.QB = { t, lang, fmt, api, reason, say, clock, q: lang === "en" ? "?lang=en" : "" };
})();
