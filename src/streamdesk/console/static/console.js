// streamdesk console: edit toggles and confirmations; every page works without it.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const form = button.closest("form");
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  if (button.dataset.action === "edit" && form) {
    const box = form.querySelector(".edit-box");
    const text = form.querySelector(".draft-text");
    const save = form.querySelector('[data-action="save-edit"]');
    const editing = box.hidden;
    box.hidden = !editing;
    text.hidden = editing;
    save.hidden = !editing;
    button.textContent = editing ? "Cancel edit" : "Edit";
    if (editing) box.focus();
  }
});

document.addEventListener("submit", (event) => {
  const buttons = event.target.querySelectorAll("button[type=submit]");
  window.setTimeout(() => buttons.forEach((b) => { b.disabled = true; }), 0);
});
