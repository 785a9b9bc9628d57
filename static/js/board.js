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
    dragged = null;
    boardHost.querySelectorAll(".drop-target").forEach(function (el) { el.classList.remove("drop-target"); });
    window.setTimeout(redrawPending, 0);  // after the drop's own move has been posted
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

  // Live: a deal someone else created, moved, edited or deleted (realtime.js, an event the
  // server only sends to those who may see the deal). The columns it left and entered are
  // fetched again as this user sees them with these filters, and the card is highlighted.
  // Not while a card is being dragged: the redraw waits for the drop, and a drop of a card
  // moved meanwhile gets the server's 409 "moved by ... meanwhile".
  const liveMessage = document.getElementById("board-live");
  const open = new Set(Array.from(boardHost.querySelectorAll("[data-cards]"), function (el) { return el.dataset.cards; }));
  let pending = [];

  function redraw(events) {
    const statuses = new Set();
    events.forEach(function (event) {
      [event.from, event.to].forEach(function (status) { if (open.has(status)) statuses.add(status); });
    });
    const last = events[events.length - 1];
    if (statuses.size) {
      const params = new URLSearchParams(window.location.search);
      params.set("statuses", Array.from(statuses).join(","));
      htmx.ajax("GET", boardHost.dataset.liveUrl + "?" + params.toString(), { target: "#board", swap: "none" })
        .then(function () { highlight(events); boardHost.dataset.liveEvent = last.id; });
    } else {
      boardHost.dataset.liveEvent = last.id;
    }
    if (liveMessage) {
      const verbs = { created: "created", moved: "moved", updated: "edited", deleted: "deleted" };
      liveMessage.textContent = last.by_name + " " + (verbs[last.action] || "changed") + " “" + last.title + "”.";
    }
  }

  function highlight(events) {
    events.forEach(function (event) {
      const card = boardHost.querySelector('[data-sale="' + event.deal + '"]');
      if (!card) return;
      card.classList.add("live-changed");
      window.setTimeout(function () { card.classList.remove("live-changed"); }, 2000);
    });
  }

  function redrawPending() {
    if (dragged || !pending.length) return;
    const events = pending;
    pending = [];
    delete boardHost.dataset.livePending;
    redraw(events);
  }

  document.body.addEventListener("realtime:deal", function (event) {
    pending.push(event.detail);
    boardHost.dataset.livePending = pending.length;  // waiting for a drag to end
    // A burst (the automation, a bulk change) becomes one request.
    window.setTimeout(redrawPending, 50);
  });
  // Missed too much while away: draw the whole board again.
  document.body.addEventListener("realtime:reset", function () {
    htmx.ajax("GET", window.location.pathname + window.location.search, { target: "#board", swap: "innerHTML" });
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
