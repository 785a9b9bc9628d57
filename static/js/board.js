// Pipeline board: drag a card onto another column to move the deal (htmx posts the move;
// the answer holds the message and the columns the move changed, with fresh cards and
// totals, swapped in place out of band). Moving to Won or
// Lost first asks for the close date (and the reason) in a dialog. The "Move to" form on
// each card is the keyboard way to do the same.
(function () {
  const boardHost = document.getElementById("board");
  const dialog = document.getElementById("close-dialog");
  if (!boardHost) return;
  let dragged = null;

  // The board answers a refused move (400 bad input, 403 may not move, 409 moved meanwhile,
  // 422 missing date or reason) with the refreshed columns and the reason: show them.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target === boardHost && [400, 403, 409, 422].includes(event.detail.xhr.status)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function move(sale, fromStatus, toStatus, extra) {
    const values = Object.assign({ sale: sale, from_status: fromStatus, to_status: toStatus }, extra || {});
    // The filters as they are now (htmx keeps them in the address bar), so the board that
    // comes back is the one on screen.
    htmx.ajax("POST", boardHost.dataset.moveUrl + window.location.search,
      { target: "#board", swap: "none", values: values });
  }

  function askClosing(card, toStatus, done) {
    const form = dialog.querySelector("form");
    form.reset();
    dialog.querySelector("[data-close-deal]").textContent =
      (toStatus === "WON" ? "Close as won: " : "Close as lost: ") + card.dataset.title;
    // The server's date (its time zone decides what "today" is), not the browser's UTC date.
    dialog.querySelector("#close-on").value = boardHost.dataset.today;
    dialog.querySelector("#close-on").max = boardHost.dataset.today;
    dialog.querySelector("[data-lost-only]").hidden = toStatus !== "LOST";
    dialog.querySelector("#lost-reason").required = toStatus === "LOST";
    const error = dialog.querySelector("[data-close-error]");
    error.hidden = true;
    form.onsubmit = function (event) {
      event.preventDefault();
      const closedOn = dialog.querySelector("#close-on").value;
      const reason = dialog.querySelector("#lost-reason").value.trim();
      if (!closedOn || (toStatus === "LOST" && !reason)) {
        error.textContent = toStatus === "LOST" ? "Give the close date and the reason." : "Give the close date.";
        error.hidden = false;
        return;
      }
      dialog.close();
      done({ closed_on: closedOn, lost_reason: reason });
    };
    dialog.querySelector("[data-close-cancel]").onclick = function () { dialog.close(); };
    dialog.showModal();
  }

  function moveCard(card, toStatus) {
    const fromStatus = card.dataset.status;
    if (toStatus === fromStatus) return;
    if (toStatus === "WON" || toStatus === "LOST") {
      askClosing(card, toStatus, function (extra) { move(card.dataset.sale, fromStatus, toStatus, extra); });
    } else {
      move(card.dataset.sale, fromStatus, toStatus);
    }
  }

  boardHost.addEventListener("dragstart", function (event) {
    const card = event.target.closest("[data-sale]");
    if (!card) return;
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.sale);
    card.classList.add("dragging");
  });
  boardHost.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    boardHost.querySelectorAll(".drop-target").forEach(function (el) { el.classList.remove("drop-target"); });
  });
  boardHost.addEventListener("dragover", function (event) {
    const column = event.target.closest("[data-column]");
    if (!column || !dragged) return;
    event.preventDefault();
    column.classList.add("drop-target");
  });
  boardHost.addEventListener("dragleave", function (event) {
    const column = event.target.closest("[data-column]");
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("drop-target");
  });
  boardHost.addEventListener("drop", function (event) {
    const column = event.target.closest("[data-column]");
    if (!column || !dragged) return;
    event.preventDefault();
    column.classList.remove("drop-target");
    const card = dragged;
    dragged = null;
    moveCard(card, column.dataset.column);
  });

  // The keyboard form: Won/Lost go through the same dialog.
  boardHost.addEventListener("submit", function (event) {
    const form = event.target.closest("[data-keyboard-move]");
    if (!form) return;
    const toStatus = form.querySelector("select[name=to_status]").value;
    if (toStatus === "WON" || toStatus === "LOST") {
      event.preventDefault();
      event.stopPropagation();
      moveCard(form.closest("[data-sale]"), toStatus);
    }
  }, true);
})();
