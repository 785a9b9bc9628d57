// Document upload: drop files (or choose them), each goes up in its own request with its own
// progress bar; the server answers JSON per file (stored, or why not). Works for every
// upload form on the page, including those htmx loads later (customer and deal panels).
(function () {
  function formOf(element) { return element.closest("form[data-upload]"); }
  const pending = new WeakMap();

  function chosen(form) {
    const extra = pending.get(form) || [];
    return Array.from(form.querySelector("[data-files]").files).concat(extra);
  }

  function row(form, name) {
    const item = document.createElement("li");
    item.innerHTML = '<span class="name"></span> <progress max="100" value="0"></progress> <span class="status">waiting</span>';
    item.querySelector(".name").textContent = name;
    form.querySelector("[data-progress]").appendChild(item);
    return item;
  }

  function send(form, file) {
    return new Promise(function (resolve) {
      const item = row(form, file.name);
      const data = new FormData(form);
      data.delete("files");
      data.append("files", file, file.name);
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("Accept", "application/json");
      request.upload.onprogress = function (event) {
        if (event.lengthComputable) item.querySelector("progress").value = Math.round(100 * event.loaded / event.total);
      };
      request.onload = function () {
        let body = {};
        try { body = JSON.parse(request.responseText); } catch (error) { body = { error: "The server answered " + request.status + "." }; }
        const result = (body.files && body.files[0]) || body;
        const status = item.querySelector(".status");
        item.querySelector("progress").value = 100;
        if (result.error) {
          item.classList.add("error");
          status.textContent = result.error;
        } else {
          status.innerHTML = '<a href="' + result.url + '">uploaded</a>';
        }
        resolve(!result.error);
      };
      request.onerror = function () {
        item.classList.add("error");
        item.querySelector(".status").textContent = "Network error; try again.";
        resolve(false);
      };
      request.send(data);
    });
  }

  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-upload]");
    if (!form) return;
    event.preventDefault();
    const files = chosen(form);
    if (!files.length) { row(form, "No file chosen").classList.add("error"); return; }
    pending.set(form, []);
    form.querySelector("[data-files]").value = "";
    files.reduce(function (chain, file) { return chain.then(function () { return send(form, file); }); }, Promise.resolve());
  });

  document.addEventListener("dragover", function (event) {
    const zone = event.target.closest("[data-dropzone]");
    if (!zone) return;
    event.preventDefault();
    zone.classList.add("drop-target");
  });
  document.addEventListener("dragleave", function (event) {
    const zone = event.target.closest("[data-dropzone]");
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("drop-target");
  });
  document.addEventListener("drop", function (event) {
    const zone = event.target.closest("[data-dropzone]");
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("drop-target");
    const form = formOf(zone);
    const files = Array.from(event.dataTransfer.files);
    pending.set(form, (pending.get(form) || []).concat(files));
    files.forEach(function (file) { row(form, file.name).querySelector(".status").textContent = "ready: press Upload"; });
  });
})();
