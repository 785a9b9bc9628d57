// The global search box in the header (search/ app). htmx fetches the dropdown as one types
// (debounced, hx-trigger on the input); this file adds the keyboard:
// - "/" or Ctrl+K (Cmd+K) focuses the box from anywhere but a text field;
// - ArrowDown / ArrowUp move through the dropdown's options, Enter opens the one chosen
//   (the first when none is), Escape closes the dropdown;
// - the dropdown shows when it has content and hides on a click elsewhere.
(() => {
  const box = () => document.querySelector("[data-search-box] input[name=q]");
  const dropdown = () => document.getElementById("search-dropdown");
  const options = () => Array.from(dropdown().querySelectorAll("[data-search-option]"));

  const isTyping = (element) =>
    element && (element.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(element.tagName));

  const setOpen = (open) => {
    const list = dropdown();
    if (!list) return;
    list.hidden = !open;
    box().setAttribute("aria-expanded", open ? "true" : "false");
  };

  const activate = (index) => {
    const all = options();
    all.forEach((option, i) => option.setAttribute("aria-selected", i === index ? "true" : "false"));
    const chosen = all[index];
    if (chosen) {
      box().setAttribute("aria-activedescendant", chosen.id);
      chosen.scrollIntoView({ block: "nearest" });
    } else {
      box().removeAttribute("aria-activedescendant");
    }
  };

  const activeIndex = () => options().findIndex((o) => o.getAttribute("aria-selected") === "true");

  document.addEventListener("keydown", (event) => {
    const input = box();
    if (!input) return;
    const shortcut = (event.key === "/" && !event.ctrlKey && !event.metaKey && !isTyping(event.target))
      || ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k");
    if (shortcut) {
      event.preventDefault();
      input.focus();
      input.select();
      return;
    }
    if (event.target !== input) return;
    const all = options();
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!all.length) return;
      event.preventDefault();
      setOpen(true);
      const step = event.key === "ArrowDown" ? 1 : -1;
      activate((activeIndex() + step + all.length) % all.length);
    } else if (event.key === "Enter") {
      const chosen = all[activeIndex()] || (dropdown().hidden ? null : all[0]);
      if (chosen) {
        event.preventDefault();
        window.location.assign(chosen.href);
      }
    } else if (event.key === "Escape") {
      setOpen(false);
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target && event.detail.target.id === "search-dropdown") {
      setOpen(dropdown().innerHTML.trim() !== "" && box() === document.activeElement);
      activate(-1);
      dropdown().dataset.ready = box().value;
    }
  });

  document.addEventListener("click", (event) => {
    if (!event.target.closest("[data-search-box]")) setOpen(false);
  });

  document.addEventListener("focusin", (event) => {
    if (event.target === box() && dropdown().innerHTML.trim() !== "") setOpen(true);
  });
})();
