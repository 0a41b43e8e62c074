"use strict";
(() => {
  const { t, api, reason, say, q } = window.QB;
  const message = document.getElementById("signin-message");

  async function signIn(form, body) {
    const button = form.querySelector("button");
    button.disabled = true;
    say(message, t.signing_in, true);
    const r = await api("POST", "/api/sign-in", body);
    button.disabled = false;
    if (r.ok) {
      window.location.assign(r.body.go + q);
      return;
    }
    say(message, reason(r));
  }
  document.getElementById("id-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn(e.target, { number: document.getElementById("number").value.trim(),
                       id_digits: document.getElementById("id-digits").value.trim() });
  });
  document.getElementById("code-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn(e.target, { desk_code: document.getElementById("desk-code").value.trim() });
  });
})();
