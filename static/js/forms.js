// Small behaviours of forms across pages, declared by data attributes instead of inline
// handlers (the Content-Security-Policy allows no inline script):
// - form[data-confirm="Question?"] asks before it submits (destructive actions);
// - input[data-select-all="<selector>"] checks or unchecks every box the selector finds;
// - input[data-select-on-click] selects its text when clicked (a link to copy).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

document.addEventListener("click", (event) => {
  const all = event.target.closest("input[data-select-all]");
  if (all) {
    document.querySelectorAll(all.dataset.selectAll).forEach((box) => { box.checked = all.checked; });
  }
  const copyable = event.target.closest("input[data-select-on-click]");
  if (copyable) copyable.select();
});
