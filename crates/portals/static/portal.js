// Tollgate portals: small progressive enhancements. Every page works without this file.
"use strict";
document.addEventListener("click", (event) => {
  const copy = event.target.closest("button.copy");
  if (copy) {
    const source = document.querySelector(copy.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(() => { copy.textContent = "Copied"; });
    }
  }
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
// A test token just generated is remembered for this tab, and the try-out console
// offers it: the token never leaves the browser except in the try-out request.
document.addEventListener("DOMContentLoaded", () => {
  const token = document.querySelector("[data-test-token]");
  if (token) {
    sessionStorage.setItem("tollgate-test-token", token.textContent.trim());
  }
  const credential = document.getElementById("f-credential");
  const saved = sessionStorage.getItem("tollgate-test-token");
  if (credential && !credential.value && saved) {
    credential.value = saved;
  }
});
