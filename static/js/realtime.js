// The site's one websocket (/ws/, crm/consumers.py): events for this user's open page.
// It reconnects by itself (a network drop, a server restart) with the id of the last event
// it saw, and the server sends what was missed, once and in order. Each event is re-sent to
// the page as a DOM event, "realtime:<topic>" on <body> (board.js, the bell listen), with
// the event as its detail. <body data-realtime> says "open" or "closed" (tests wait on it).
(function () {
  const body = document.body;
  if (!body.dataset.realtimeUrl) return;
  // A page that rendered data as of an event (the board) starts from there, so nothing that
  // happened between its rendering and the socket opening is lost.
  const since = document.querySelector("[data-realtime-since]");
  let lastId = since ? Number(since.dataset.realtimeSince) : null;
  const seen = new Set();
  let delay = 500;

  // "/ws/" on the page's own server, or "wss://host:port/ws/" for a separate service.
  function address() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const query = lastId === null ? "" : "?last_id=" + lastId;
    const url = body.dataset.realtimeUrl;
    const base = /^wss?:\/\//.test(url) ? url : scheme + window.location.host + url;
    return base + query;
  }

  function tell(name, detail) {
    body.dispatchEvent(new CustomEvent(name, { detail: detail, bubbles: true }));
  }

  // A long job's progress: its page looks again now rather than at its next poll, and
  // reloads when the job changed state (a scheduled send fired, an import finished).
  function progress(data) {
    const selector = '[data-live-progress="' + data.object + "-" + data.id + '"]';
    document.querySelectorAll(selector).forEach(function (element) {
      if (element.dataset.liveStatus && data.status && element.dataset.liveStatus !== data.status) {
        window.location.reload();
      } else if (window.htmx) {
        window.htmx.trigger(element, "live-progress");
      }
    });
    tell("realtime:progress", data);
  }

  function connect() {
    const socket = new WebSocket(address());
    socket.addEventListener("message", function (message) {
      let data;
      try { data = JSON.parse(message.data); } catch (error) { return; }
      if (data.type === "hello") {
        if (lastId === null) lastId = data.last_id;
        delay = 500;
        body.dataset.realtime = "open";
        tell("realtime:open", data);
      } else if (data.type === "reset") {
        lastId = null;  // too much was missed: the page redraws what it shows
        tell("realtime:reset", data);
      } else if (data.type === "progress") {
        progress(data);
      } else if (data.type === "event" && !seen.has(data.id)) {
        seen.add(data.id);
        lastId = Math.max(lastId || 0, data.id);
        tell("realtime:" + data.topic, data);
      }
    });
    socket.addEventListener("close", function () {
      body.dataset.realtime = "closed";
      // Back off up to half a minute, with jitter, so a restarted server is not stormed.
      window.setTimeout(connect, delay + Math.random() * delay);
      delay = Math.min(delay * 2, 30000);
    });
  }
  connect();
})();
