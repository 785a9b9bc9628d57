// Forms marked data-confirm="Question?" ask before they submit (destructive actions), without
// inline handlers in the templates.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
