"use strict";
// The candidate's screen. Every answer change is sent at once with a growing sequence number and shown as saved
// only when the station acknowledges it; unsent changes are retried until they are. The time left comes from the
// station (its clock), re-read every few seconds; the browser only counts down between readings.
(() => {
  const { t, fmt, api, reason, say, clock, q } = window.QB;
  const exam = document.getElementById("exam");
  const number = exam.dataset.number;
  const base = `/api/candidates/${encodeURIComponent(number)}`;
  const $ = (id) => document.getElementById(id);
  const message = $("message"), status = $("save-status"), countdown = $("countdown");
  const LETTERS = "ABCDEFGH";

  let paper = null;          // the paper as the station sent it
  let current = 0;           // index of the question shown
  const saved = new Map();   // no -> places the station acknowledged
  const seqs = new Map();    // no -> last sequence number used
  const pending = new Map(); // no -> {places, seq} not yet acknowledged
  const inflight = new Set();
  let flags = new Set();
  let remainingMs = null, syncedAt = 0, phase = "", stopped = false, retry = 500, lastSavedAt = "";

  function show(which) {
    for (const id of ["waiting-screen", "submitted-screen", "exam"]) $(id).hidden = id !== which;
  }

  function sync(body) {
    if (body && typeof body.remaining_ms === "number") {
      remainingMs = body.remaining_ms;
      syncedAt = performance.now();
    }
  }

  function left() {
    return remainingMs === null ? null : remainingMs - (performance.now() - syncedAt);
  }

  function refused(r) {
    if (r.status === 401) {
      stopped = true;
      say(message, reason(r));
      const a = document.createElement("a");
      a.href = "/" + q;
      a.textContent = " " + t.sign_in_again;
      message.appendChild(a);
      exam.hidden = true;
      return;
    }
    say(message, reason(r));
    if (r.status === 409 || r.status === 403) refresh();
  }

  // ---------------------------------------------------------------- state from the station
  async function load() {
    const r = await api("GET", `${base}/paper`);
    if (!r.ok) return refused(r);
    paper = r.body;
    saved.clear();
    seqs.clear();
    for (const [no, places] of Object.entries(paper.answers)) saved.set(Number(no), places);
    for (const [no, seq] of Object.entries(paper.seqs)) seqs.set(Number(no), seq);
    flags = new Set(paper.flags);
    $("who").textContent = `${paper.name} · ${paper.number} · ${t.room} ${paper.room} / ${t.desk} ${paper.desk}`;
    apply(paper);
    if (phase === "answering") {
      buildPalette();
      render();
    }
  }

  function apply(state) {
    sync(state);
    phase = state.phase;
    if (phase === "waiting" || (phase === "answering" && !state.paper_ready)) {
      show("waiting-screen");
    } else if (phase === "answering") {
      if (exam.hidden) show("exam");
    } else {
      finish(state);
    }
  }

  function finish(state) {
    stopped = state.phase === "submitted" || state.phase === "absent";
    if (state.phase === "time_over") {
      setTimeout(refresh, 700); // the station submits at time-out within a moment
    }
    const how = state.phase === "time_over" ? "time_out" : state.how; // time over: the station submits it now
    const words = how === "time_out" ? t.time_out_text : how === "candidate" ? t.submitted_text : t.ended_text;
    $("submitted-text").textContent = fmt(words, { at: state.submitted_at || state.server_time,
                                                   answered: state.answered });
    show("submitted-screen");
    countdown.textContent = clock(0);
  }

  async function refresh() {
    const r = await api("GET", `${base}/state`);
    if (!r.ok) {
      if (r.status === 0) return; // the next poll tries again
      return refused(r);
    }
    const before = phase;
    if (before !== "answering" && r.body.phase === "answering") return load();
    apply(r.body);
  }

  // ---------------------------------------------------------------- the question
  function answerOf(no) {
    return pending.has(no) ? pending.get(no).places : (saved.get(no) || []);
  }

  function render() {
    const qn = paper.questions[current];
    const total = paper.questions.length;
    $("q-heading").textContent = fmt(t.question, { no: qn.no, total });
    $("q-meta").textContent = `${t[qn.type] || qn.type} · ${fmt(t.points, { points: qn.points })}`;
    $("q-stem").textContent = qn.stem;
    const media = $("q-media");
    media.replaceChildren(...qn.media.map((src) => {
      const img = document.createElement("img");
      img.src = src;
      img.alt = "";
      return img;
    }));
    const box = $("q-options");
    $("q-legend").textContent = $("q-heading").textContent;
    const chosen = new Set(answerOf(qn.no));
    const kind = qn.type === "multiple_choice" ? "checkbox" : "radio";
    box.querySelectorAll("label").forEach((el) => el.remove());
    qn.options.forEach((text, k) => {
      const label = document.createElement("label");
      label.className = "option";
      const input = document.createElement("input");
      input.type = kind;
      input.name = "option";
      input.value = String(k);
      input.checked = chosen.has(k);
      input.addEventListener("change", () => choose(qn.no));
      const letter = document.createElement("span");
      letter.className = "letter";
      letter.textContent = LETTERS[k];
      const span = document.createElement("span");
      span.textContent = text;
      label.append(input, letter, span);
      box.appendChild(label);
    });
    $("prev").disabled = current === 0;
    $("next").disabled = current === total - 1;
    const flagged = flags.has(qn.no);
    $("flag").setAttribute("aria-pressed", flagged ? "true" : "false");
    $("flag").textContent = "⚑ " + (flagged ? t.unflag : t.flag);
    paintPalette();
  }

  function go(index, focus) {
    if (!paper || index < 0 || index >= paper.questions.length) return;
    current = index;
    render();
    if (focus) $("q-heading").focus();
  }

  // ---------------------------------------------------------------- the palette
  function buildPalette() {
    const pal = $("palette");
    pal.replaceChildren(...paper.questions.map((qn, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = String(qn.no);
      b.dataset.no = String(qn.no);
      b.addEventListener("click", () => go(i, true));
      return b;
    }));
  }

  function paintPalette() {
    let answered = 0;
    for (const b of $("palette").children) {
      const no = Number(b.dataset.no);
      const isAnswered = (saved.get(no) || []).length > 0;
      answered += isAnswered ? 1 : 0;
      b.className = [isAnswered ? "answered" : "", flags.has(no) ? "flagged" : "", pending.has(no) ? "pending" : "",
                     no === paper.questions[current].no ? "current" : ""].join(" ").trim();
      b.setAttribute("aria-label", `${no} ${isAnswered ? t.answered : t.unanswered}${flags.has(no) ? " " + t.flagged : ""}`);
      if (no === paper.questions[current].no) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    }
    $("counts").textContent = `${t.answered} ${answered} · ${t.unanswered} ${paper.questions.length - answered}` +
      ` · ${t.flagged} ${flags.size}`;
  }

  // ---------------------------------------------------------------- saving
  function showSaving() {
    const waiting = pending.size;
    status.classList.toggle("bad", waiting > 0 && retry > 500);
    if (waiting === 0) status.textContent = lastSavedAt ? fmt(t.saved, { at: lastSavedAt }) : "";
    else status.textContent = retry > 500 ? `${t.unsaved} ${fmt(t.not_saved, { n: waiting })}` : t.saving;
  }

  function choose(no) {
    const places = [...$("q-options").querySelectorAll("input")].filter((i) => i.checked).map((i) => Number(i.value));
    const seq = (seqs.get(no) || 0) + 1;
    seqs.set(no, seq);
    pending.set(no, { places, seq });
    showSaving();
    paintPalette();
    send(no);
  }

  async function send(no) {
    if (inflight.has(no) || !pending.has(no) || stopped) return;
    const want = pending.get(no);
    inflight.add(no);
    const r = await api("PUT", `${base}/answers/${no}`, { places: want.places, seq: want.seq });
    inflight.delete(no);
    if (r.ok) {
      retry = 500;
      saved.set(no, r.body.places);
      lastSavedAt = r.body.saved_at;
      sync(r.body);
      const now = pending.get(no);
      if (now && now.seq <= r.body.seq) pending.delete(no);
      if (r.body.seq > (seqs.get(no) || 0)) seqs.set(no, r.body.seq);
      showSaving();
      paintPalette();
      if (pending.has(no)) send(no);
      return;
    }
    if (r.status === 0 || r.status >= 500) {
      retry = Math.min(retry * 2, 5000);
      showSaving();
      setTimeout(() => send(no), retry);
      return;
    }
    pending.delete(no);
    showSaving();
    if (paper.questions[current].no === no) render();
    refused(r);
  }

  async function toggleFlag() {
    const qn = paper.questions[current];
    const on = !flags.has(qn.no);
    const r = await api("PUT", `${base}/flags/${qn.no}`, { flagged: on });
    if (!r.ok) return refused(r);
    flags = new Set(r.body.flags);
    render();
  }

  // ---------------------------------------------------------------- submitting
  function openConfirm() {
    let answered = 0;
    for (const qn of paper.questions) answered += answerOf(qn.no).length > 0 ? 1 : 0;
    const total = paper.questions.length;
    $("confirm-text").textContent = fmt(t.confirm_text, { total, answered, unanswered: total - answered,
                                                          flagged: flags.size }) +
      (pending.size ? " " + fmt(t.not_saved, { n: pending.size }) : "");
    $("confirm-dialog").showModal();
  }

  async function confirmSubmit() {
    const button = $("confirm-submit");
    button.disabled = true;
    const until = performance.now() + 8000;
    while (pending.size && performance.now() < until) {
      for (const no of pending.keys()) send(no);
      await new Promise((ok) => setTimeout(ok, 200));
    }
    const r = await api("POST", `${base}/submit`, { confirm: true });
    button.disabled = false;
    $("confirm-dialog").close();
    if (!r.ok) return refused(r);
    finish(r.body);
  }

  // ---------------------------------------------------------------- keys, clock, polling
  $("prev").addEventListener("click", () => go(current - 1, true));
  $("next").addEventListener("click", () => go(current + 1, true));
  $("flag").addEventListener("click", toggleFlag);
  $("submit").addEventListener("click", openConfirm);
  $("cancel-submit").addEventListener("click", () => $("confirm-dialog").close());
  $("confirm-submit").addEventListener("click", confirmSubmit);
  document.addEventListener("keydown", (e) => {
    if (!paper || exam.hidden || $("confirm-dialog").open || e.ctrlKey || e.altKey || e.metaKey) return;
    if (e.target instanceof HTMLInputElement && e.target.type === "text") return;
    const key = e.key.toLowerCase();
    if (key === "n" || e.key === "PageDown") { go(current + 1, true); e.preventDefault(); }
    else if (key === "p" || e.key === "PageUp") { go(current - 1, true); e.preventDefault(); }
    else if (key === "f") { toggleFlag(); e.preventDefault(); }
    else if (/^[1-8]$/.test(e.key)) {
      const inputs = $("q-options").querySelectorAll("input");
      const input = inputs[Number(e.key) - 1];
      if (!input) return;
      input.checked = input.type === "checkbox" ? !input.checked : true;
      input.dispatchEvent(new Event("change"));
      input.focus();
      e.preventDefault();
    }
  });
  window.addEventListener("beforeunload", (e) => { if (pending.size) e.preventDefault(); });

  setInterval(() => {
    const ms = left();
    if (ms === null || phase !== "answering") return;
    countdown.textContent = clock(ms);
    countdown.parentElement.classList.toggle("warn", ms < 5 * 60 * 1000);
    if (ms <= 0 && !stopped) {
      stopped = true; // until the station says what happened
      setTimeout(async () => { stopped = false; await refresh(); }, 300);
    }
  }, 250);
  setInterval(() => { if (!stopped || phase === "waiting") refresh(); }, 3000); // also tells the proctor we are here
  load();
})();
