"use strict";
// The proctor's console: every desk live (refreshed every two seconds), the room's actions, incidents, the log.
(() => {
  const { t, fmt, api, reason, say, clock, q } = window.QB;
  const $ = (id) => document.getElementById(id);
  const message = $("message");

  const form = $("proctor-form");
  if (form) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const r = await api("POST", "/api/proctor/sign-in", { code: $("proctor-code").value.trim() });
      if (r.ok) window.location.assign("/proctor" + q);
      else say(message, reason(r));
    });
    return;
  }
  const room = $("console").dataset.room;
  const base = `/api/proctor/rooms/${encodeURIComponent(room)}`;
  const STATUS = { not_signed_in: t.not_signed_in, waiting: t.waiting, answering: t.answering,
                   submitted: t.submitted_status, absent: t.absent_status, disconnected: t.disconnected,
                   time_over: t.time_over };
  let data = null;

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function render(d) {
    data = d;
    $("room-title").textContent = d.title;
    const parts = [`${t.window} ${d.window[0]}–${d.window[1]}`, d.release ? t.release_in : `${t.release_waiting}: ${d.release_note}`,
                   d.started_at ? fmt(t.started, { at: d.started_at }) : t.not_started];
    if (d.ended_at) parts.push(fmt(t.ended, { at: d.ended_at }));
    if (d.outage_seconds) parts.push(fmt(t.outage, { s: d.outage_seconds }));
    parts.push(d.server_time);
    $("room-state").textContent = parts.join(" · ");
    $("start-room").disabled = !!d.started_at;
    $("end-room").disabled = !d.started_at || !!d.ended_at;
    const body = $("desks").querySelector("tbody");
    body.replaceChildren(...d.desks.map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.number = s.number;
      tr.dataset.status = s.status;
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.status = s.status;
      badge.textContent = STATUS[s.status] || s.status;
      const st = cell("");
      st.appendChild(badge);
      const acts = cell("", "actions");
      const open = !d.ended_at && s.status !== "submitted" && s.status !== "absent";
      for (const [cls, label, ok] of [["absent", t.absent, open && s.status === "not_signed_in"],
                                      ["extra-time", t.add_time, open], ["move", t.move, open]]) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = cls;
        b.textContent = label;
        b.disabled = !ok;
        b.addEventListener("click", () => action(cls, s));
        acts.appendChild(b);
      }
      tr.append(cell(String(s.desk)), cell(s.number), cell(s.name), st, cell(`${s.answered}/${s.total}`, "answered"),
                cell(s.remaining_ms === null ? "—" : clock(s.remaining_ms), "remaining"),
                cell(s.extra_minutes ? `+${s.extra_minutes}` : ""), cell(s.machine), acts);
      return tr;
    }));
    const select = $("incident-category");
    if (!select.options.length) {
      for (const c of d.categories) {
        const o = document.createElement("option");
        o.value = c.code;
        o.textContent = `${c.code} ${QB.lang === "en" ? c.en : c.zh}`;
        o.title = c.article;
        select.appendChild(o);
      }
    }
    if (!d.bundles.length) $("bundles").replaceChildren(document.createTextNode("—"));
    else $("bundles").replaceChildren(...d.bundles.map((b) => {
      const li = document.createElement("li");
      li.dataset.acknowledged = String(b.acknowledged);
      li.textContent = `${b.bundle_id.slice(0, 12)} · ` + (b.acknowledged ? `${t.acknowledged} ${b.acknowledged_at}`
        : `${t.retrying} (${b.attempts}) ${b.last_error}`);
      return li;
    }));
  }

  async function poll() {
    const r = await api("GET", base);
    if (r.ok) render(r.body);
    else if (r.status !== 0) say(message, reason(r));
  }

  async function post(path, body) {
    const r = await api("POST", base + path, body || {});
    if (r.ok) {
      say(message, "");
      render(r.body);
      loadLog();
    } else {
      say(message, reason(r));
    }
    return r;
  }

  function field(id, label, type, extra) {
    const wrap = document.createElement("p");
    const l = document.createElement("label");
    l.htmlFor = id;
    l.textContent = label;
    const input = document.createElement(type === "textarea" ? "textarea" : "input");
    input.id = id;
    if (type !== "textarea") input.type = type;
    Object.assign(input, extra || {});
    wrap.append(l, input);
    return wrap;
  }

  function action(kind, seat) {
    const dialog = $("action-dialog");
    const fields = $("action-fields");
    const title = { absent: t.absent, "extra-time": t.add_time, move: t.move }[kind];
    $("action-title").textContent = `${title} — ${seat.desk} ${seat.number} ${seat.name}`;
    fields.replaceChildren();
    if (kind === "extra-time") fields.append(field("action-minutes", t.minutes, "number", { min: 1, max: 120, value: 5, required: true }));
    if (kind === "move") fields.append(field("action-to", t.to_machine, "text", { required: true, maxLength: 60 }));
    fields.append(field("action-reason", t.reason, "textarea", { required: kind !== "absent", maxLength: 500 }));
    $("action-form").onsubmit = async (e) => {
      e.preventDefault();
      const why = $("action-reason").value.trim();
      const path = `/candidates/${encodeURIComponent(seat.number)}/${kind}`;
      const body = kind === "extra-time" ? { minutes: Number($("action-minutes").value), reason: why }
        : kind === "move" ? { to: $("action-to").value.trim(), reason: why } : { reason: why };
      const r = await post(path, body);
      dialog.close();
      if (r.ok && kind === "move") say($("move-result"), fmt(t.new_code, { code: r.body.desk_code }) +
                                        ` — ${seat.number} ${seat.name}`, true);
    };
    $("action-cancel").onclick = () => dialog.close();
    dialog.showModal();
  }

  $("start-room").addEventListener("click", () => post("/start"));
  $("end-room").addEventListener("click", () => { if (window.confirm(t.confirm_end)) post("/end"); });
  $("incident-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await post("/incidents", { category: $("incident-category").value,
                                          note: $("incident-note").value.trim() });
    if (r.ok) {
      $("incident-note").value = "";
      say($("incident-saved"), `${t.save} ✓ ${r.body.incident_at}`, true);
      loadLog();
    }
  });
  async function loadLog() {
    const r = await api("GET", base + "/log");
    if (!r.ok) return say(message, reason(r));
    const c = $("chain-status");
    c.textContent = r.body.chain_holds ? t.chain_ok : `${t.chain_broken}: ${r.body.chain_break}`;
    c.dataset.holds = String(r.body.chain_holds);
    const times = r.body.local_times;
    $("log").replaceChildren(...r.body.entries.map((e, i) => {
      const li = document.createElement("li");
      li.value = e.seq;
      li.textContent = `${times[i]} ${e.actor}: ${e.action} ${JSON.stringify(e.detail)}`;
      return li;
    }).reverse());
  }
  $("show-log").addEventListener("click", loadLog);
  poll();
  loadLog();
  setInterval(poll, 2000);
  setInterval(loadLog, 15000);
})();
