// Document upload: drop files (or choose them) and each is listed with its own type (the
// form's Type to start with, which sets every file whose type was not chosen by hand); Upload
// sends each in its own request with its own progress bar, and the server answers JSON per
// file (stored, or why not). Each stored file fires "documents-uploaded" on its form, which
// the lists beside it (a panel's documents, the documents table) refresh on through htmx.
// Works for every upload form on the page, including those htmx loads later (customer and
// deal panels).
(function () {
  const queued = new WeakMap(); // form -> [{file, item, select}] chosen but not sent yet

  function formTypeSelect(form) { return form.querySelector("select[name=document_type]"); }

  function row(form, name) {
    const item = document.createElement("li");
    item.innerHTML = '<span class="name"></span> <progress max="100" value="0"></progress> <span class="status">waiting</span>';
    item.querySelector(".name").textContent = name;
    form.querySelector("[data-progress]").appendChild(item);
    return item;
  }

  function typeSelect(form, name) {
    // A copy of the form's Type (no name: only the chosen value is sent, with its file).
    const select = formTypeSelect(form).cloneNode(true);
    select.removeAttribute("name");
    select.removeAttribute("id");
    select.value = formTypeSelect(form).value;
    select.setAttribute("aria-label", "Type of " + name);
    select.dataset.fileType = "";
    select.addEventListener("change", function () { select.dataset.chosen = "true"; });
    return select;
  }

  function queue(form, files) {
    const entries = queued.get(form) || [];
    files.forEach(function (file) {
      const item = row(form, file.name);
      const select = typeSelect(form, file.name);
      item.insertBefore(select, item.querySelector("progress"));
      item.querySelector(".status").textContent = "ready: press Upload";
      entries.push({ file: file, item: item, select: select });
    });
    queued.set(form, entries);
  }

  function send(form, entry) {
    return new Promise(function (resolve) {
      const item = entry.item;
      item.querySelector(".status").textContent = "uploading";
      entry.select.disabled = true;
      const data = new FormData(form);
      data.delete("files");
      data.append("files", entry.file, entry.file.name);
      data.set("document_type", entry.select.value);
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
          const link = document.createElement("a");
          link.href = result.url;
          link.textContent = "uploaded";
          status.replaceChildren(link);
          form.dispatchEvent(new CustomEvent("documents-uploaded", { bubbles: true, detail: result }));
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
    const entries = queued.get(form) || [];
    if (!entries.length) { row(form, "No file chosen").classList.add("error"); return; }
    queued.set(form, []);
    entries.reduce(function (chain, entry) { return chain.then(function () { return send(form, entry); }); }, Promise.resolve());
  });

  document.addEventListener("change", function (event) {
    const form = event.target.closest("form[data-upload]");
    if (!form) return;
    if (event.target.matches("[data-files]")) {
      queue(form, Array.from(event.target.files));
      event.target.value = ""; // listed above; choosing the same file again adds it again
    } else if (event.target === formTypeSelect(form)) {
      // The form's Type is every file's type, except those chosen one by one.
      (queued.get(form) || []).forEach(function (entry) {
        if (!entry.select.dataset.chosen) entry.select.value = event.target.value;
      });
    }
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
    queue(zone.closest("form[data-upload]"), Array.from(event.dataTransfer.files));
  });
})();
