// Small behaviours of forms across pages, declared by data attributes instead of inline
// handlers (the Content-Security-Policy allows no inline script):
// - form[data-confirm="Question?"] asks before it submits (destructive actions);
// - input[data-select-all="<selector>"] checks or unchecks every box the selector finds;
// - input[data-select-on-click] selects its text when clicked (a link to copy);
// - [data-fold] is folded on a phone (app.css) until its button[data-fold-toggle] opens it:
//   the header's navigation behind Menu, a list's filters behind Filters. Escape folds it
//   again. The button shows how many filters are set ([data-fold-count]).
// This file is loaded without `defer`, in <head>: html.js is set before the first paint, and
// the folding CSS applies only under it, so without JavaScript nothing is folded.
document.documentElement.classList.add("js");

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

function setFolded(box, folded) {
  box.classList.toggle("is-open", !folded);
  const toggle = box.querySelector("[data-fold-toggle]");
  if (toggle) toggle.setAttribute("aria-expanded", String(!folded));
}

document.addEventListener("click", (event) => {
  const all = event.target.closest("input[data-select-all]");
  if (all) {
    document.querySelectorAll(all.dataset.selectAll).forEach((box) => { box.checked = all.checked; });
  }
  const copyable = event.target.closest("input[data-select-on-click]");
  if (copyable) copyable.select();
  const toggle = event.target.closest("[data-fold-toggle]");
  if (toggle) {
    const box = toggle.closest("[data-fold]");
    setFolded(box, box.classList.contains("is-open"));
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const box = event.target.closest && event.target.closest("[data-fold].is-open");
  if (box) {
    setFolded(box, true);
    box.querySelector("[data-fold-toggle]").focus();
  }
});

// How many of a folding filter form's fields the address sets (the filters in force; "sort"
// and "page" are hidden or not fields, so they do not count).
function countFilters(form) {
  const count = form.querySelector("[data-fold-count]");
  if (!count) return;
  const query = new URLSearchParams(window.location.search);
  const names = new Set();
  form.querySelectorAll("input:not([type=hidden]), select, textarea").forEach((field) => {
    if (field.name && query.getAll(field.name).some((value) => value.trim() !== "")) {
      names.add(field.name);
    }
  });
  count.textContent = names.size ? ` (${names.size} set)` : "";
}

function countAllFilters() {
  document.querySelectorAll("form[data-fold]").forEach(countFilters);
}
document.addEventListener("DOMContentLoaded", countAllFilters);
document.addEventListener("htmx:pushedIntoHistory", countAllFilters);
