// Page behaviour htmx does not cover: drag-and-drop upload with per-file progress, the lightbox dialog and
// its keyboard navigation, and small toasts. No framework; htmx does the fetching of HTML fragments.
"use strict";

const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

function toast(message, { kind = "", action = null, timeout = 6000 } = {}) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  const text = document.createElement("span");
  text.textContent = message;
  el.append(text);
  if (action) {
    const button = document.createElement("button");
    button.className = "link";
    button.textContent = action.label;
    button.addEventListener("click", () => { el.remove(); action.run(); });
    el.append(button);
  }
  box.append(el);
  setTimeout(() => el.remove(), timeout);
}

async function apiError(response) {
  try {
    const body = await response.json();
    return body.message || `The server answered ${response.status}.`;
  } catch {
    return `The server answered ${response.status}.`;
  }
}

async function api(method, url, body) {
  const headers = { "X-CSRFToken": csrfToken(), Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(await apiError(response));
  return response;
}

function adjustCount(delta) {
  const counter = document.getElementById("photo-count");
  if (!counter) return;
  const total = Number(counter.dataset.total) + delta;
  counter.dataset.total = total;
  counter.textContent = `${total} photo${total === 1 ? "" : "s"}`;
}

/* ---------- Filters: submit on change ---------- */
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-autosubmit]");
  if (form) form.requestSubmit();
});

/* ---------- Lightbox ---------- */
const lightbox = () => document.getElementById("lightbox");
let currentTile = null;

function tiles() {
  return Array.from(document.querySelectorAll("#grid .tile[data-photo-id]"));
}

function openTile(tile) {
  if (!tile) return;
  currentTile = tile;
  htmx.ajax("GET", tile.getAttribute("hx-get"), { target: "#lightbox-body", swap: "innerHTML" });
}

function step(offset) {
  const all = tiles();
  const index = all.indexOf(currentTile);
  if (index < 0) return;
  const next = all[index + offset];
  if (next) {
    openTile(next);
    next.scrollIntoView({ block: "nearest" });
  } else if (offset > 0) {
    // At the end of what is loaded: bring the infinite-scroll sentinel into view so the next page loads.
    document.querySelector("#grid .sentinel")?.scrollIntoView({ block: "end" });
  }
}

document.addEventListener("htmx:afterSwap", (event) => {
  const dialog = lightbox();
  if (dialog && event.detail.target.id === "lightbox-body" && !dialog.open) dialog.showModal();
});

document.addEventListener("htmx:beforeRequest", (event) => {
  const tile = event.detail.elt.closest?.(".tile[data-photo-id]");
  if (tile && tile.closest("#grid")) currentTile = tile;
});

document.addEventListener("keydown", (event) => {
  const dialog = lightbox();
  if (!dialog || !dialog.open || event.target.matches("input, textarea, select")) return;
  if (event.key === "ArrowRight") { event.preventDefault(); step(1); }
  else if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
  else if (event.key === "Delete") { event.preventDefault(); dialog.querySelector('[data-action="delete"]')?.click(); }
});

async function trashPhoto(id) {
  await api("DELETE", `/api/photos/${id}/`);
  const tile = document.querySelector(`#grid .tile[data-photo-id="${id}"]`);
  const all = tiles();
  const following = all[all.indexOf(tile) + 1] || all[all.indexOf(tile) - 1];
  const placeholder = tile?.nextSibling;
  const parent = tile?.parentNode;
  tile?.remove();
  if (tile) adjustCount(-1);
  const dialog = lightbox();
  if (dialog?.open) {
    if (following) openTile(following); else dialog.close();
  }
  toast("Moved to trash.", {
    action: {
      label: "Undo",
      run: async () => {
        try {
          await api("POST", `/api/photos/${id}/restore/`);
          if (tile && parent) {
            parent.insertBefore(tile, placeholder && placeholder.parentNode === parent ? placeholder : null);
            adjustCount(1);
          }
          toast("Restored.");
        } catch (error) { toast(error.message, { kind: "error" }); }
      },
    },
  });
}

async function retryDownload(control) {
  const id = control.dataset.photoId;
  control.disabled = true;
  control.textContent = "Downloading…";
  const photo = await (await api("POST", `/api/photos/${id}/retry/`)).json();
  if (photo.retrieval_status !== "completed") toast(photo.retrieval_error || "The download failed again.", { kind: "error" });
  if (lightbox()?.open) htmx.ajax("GET", `/photos/${id}/`, { target: "#lightbox-body", swap: "innerHTML" });
  else window.location.reload();
  const tile = document.querySelector(`#grid .tile[data-photo-id="${id}"]`);
  if (tile && photo.retrieval_status === "completed") {
    const response = await fetch(`/photos/${id}/tile/`, { credentials: "same-origin" });
    if (response.ok) { tile.outerHTML = await response.text(); htmx.process(document.querySelector(`#grid .tile[data-photo-id="${id}"]`)); }
  }
}

document.addEventListener("click", async (event) => {
  const control = event.target.closest("[data-action]");
  if (!control) return;
  const action = control.dataset.action;
  const dialog = lightbox();
  try {
    if (action === "close") {
      if (dialog?.open) dialog.close();
      else window.location.assign("/");  // the photo's own page, opened from a link
    }
    else if (action === "prev") step(-1);
    else if (action === "next") step(1);
    else if (action === "delete") await trashPhoto(control.dataset.photoId);
    else if (action === "retry-download") await retryDownload(control);
    else if (action === "restore") {
      await api("POST", `/api/photos/${control.dataset.photoId}/restore/`);
      window.location.reload();
    } else if (action === "close-uploads") document.getElementById("upload-panel").hidden = true;
  } catch (error) {
    toast(error.message, { kind: "error" });
  }
});

// A click on the dim area around the photo closes the lightbox.
document.addEventListener("click", (event) => {
  const dialog = lightbox();
  if (dialog?.open && (event.target === dialog || event.target.classList.contains("lightbox-stage"))) dialog.close();
});

/* ---------- Upload ---------- */
const MAX_PARALLEL = 3;
const queue = [];
let active = 0;

function uploadRow(file) {
  const panel = document.getElementById("upload-panel");
  panel.hidden = false;
  const li = document.createElement("li");
  li.className = "upload-item";
  li.innerHTML = '<span class="name"></span><progress max="100" value="0"></progress><span class="status">Waiting…</span>';
  li.querySelector(".name").textContent = file.name;
  document.getElementById("upload-list").prepend(li);
  return li;
}

function finish(row, state, message) {
  row.classList.add(state);
  row.querySelector(".status").textContent = message;
  if (state !== "failed") row.querySelector("progress").value = 100;
}

async function showNewTile(photoId) {
  const grid = document.getElementById("grid");
  if (!grid || grid.dataset.appendUploads === "false") return;
  const response = await fetch(`/photos/${photoId}/tile/`, { credentials: "same-origin" });
  if (!response.ok) return;
  grid.insertAdjacentHTML("afterbegin", await response.text());
  const tile = grid.firstElementChild;
  tile.classList.add("just-added");
  htmx.process(tile);
  adjustCount(1);
  document.getElementById("empty-state")?.remove();
}

function send(file, row) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/photos/");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      const percent = Math.round((event.loaded / event.total) * 100);
      row.querySelector("progress").value = percent;
      row.querySelector(".status").textContent = percent < 100 ? `${percent}%` : "Making thumbnails…";
    });
    xhr.addEventListener("load", async () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON: use the status below */ }
      if (xhr.status === 201) {
        const duplicate = body.duplicate_of && body.duplicate_of.length;
        finish(row, duplicate ? "warn" : "done", duplicate ? "Uploaded — you already had this photo" : "Uploaded");
        row.dataset.photoId = body.id;
        await showNewTile(body.id);
      } else {
        finish(row, "failed", body.message || `Refused (${xhr.status})`);
      }
      resolve();
    });
    xhr.addEventListener("error", () => { finish(row, "failed", "Network error: the server could not be reached."); resolve(); });
    xhr.send(form);
  });
}

function pump() {
  while (active < MAX_PARALLEL && queue.length) {
    const { file, row } = queue.shift();
    active += 1;
    row.querySelector(".status").textContent = "Starting…";
    send(file, row).finally(() => { active -= 1; pump(); });
  }
}

function enqueue(files) {
  for (const file of files) queue.push({ file, row: uploadRow(file) });
  pump();
}

document.addEventListener("change", (event) => {
  if (event.target.id === "upload-input") {
    enqueue(event.target.files);
    event.target.value = "";
  }
});

let dragDepth = 0;
const overlay = () => document.getElementById("drop-overlay");
const carriesFiles = (event) => Array.from(event.dataTransfer?.types || []).includes("Files");

document.addEventListener("dragenter", (event) => {
  if (!overlay() || !carriesFiles(event)) return;
  dragDepth += 1;
  overlay().hidden = false;
});
document.addEventListener("dragleave", () => {
  if (!overlay()) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) overlay().hidden = true;
});
document.addEventListener("dragover", (event) => {
  if (overlay() && carriesFiles(event)) event.preventDefault();
});
document.addEventListener("drop", (event) => {
  if (!overlay() || !carriesFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  overlay().hidden = true;
  enqueue(event.dataTransfer.files);
});

/* ---------- Confirmations for plain forms (they still post without JavaScript) ---------- */
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

/* ---------- Pod cost and auto-stop countdown, ticking between the badge's polls ---------- */
// Each number was true when the server rendered it; count from when this page received it, so a
// difference between the two clocks does not matter.
function tick() {
  const now = Date.now();
  document.querySelectorAll("[data-tick-cost], [data-tick-countdown]").forEach((el) => {
    if (!el.dataset.receivedAt) el.dataset.receivedAt = now;
    const hours = (now - Number(el.dataset.receivedAt)) / 3600000;
    if ("tickCost" in el.dataset) {
      const cost = Number(el.dataset.cost) + Number(el.dataset.costPerHour) * hours;
      el.textContent = `$${cost.toFixed(el.closest(".backend-badge") ? 3 : 4)}`;
    } else {
      const left = Math.floor(Math.max(0, Number(el.dataset.seconds) - hours * 3600));
      const two = (n) => String(n).padStart(2, "0");
      const [h, m, s] = [Math.floor(left / 3600), Math.floor((left % 3600) / 60), left % 60];
      el.textContent = h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
    }
  });
}
setInterval(tick, 1000);
document.addEventListener("htmx:afterSettle", tick);
tick();
