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

// The page's photo count, and what shows only when there are photos (or only when there are none).
function adjustCount(delta) {
  const counter = document.getElementById("photo-count");
  if (!counter) return;
  const total = Number(counter.dataset.total) + delta;
  counter.dataset.total = total;
  counter.textContent = `${total} photo${total === 1 ? "" : "s"}`;
  const empty = document.getElementById("empty-state");
  if (empty) empty.hidden = total > 0;
  document.querySelectorAll("[data-hide-when-empty]").forEach((el) => { el.hidden = total === 0; });
}

/* ---------- The phone's menu (the links fold behind a button on narrow screens) ---------- */
function setMenu(open) {
  const button = document.querySelector(".topbar .menu-button");
  if (!button) return;
  button.closest(".topbar").classList.toggle("menu-open", open);
  button.setAttribute("aria-expanded", String(open));
}

document.addEventListener("click", (event) => {
  const button = event.target.closest(".menu-button");
  if (button) setMenu(button.getAttribute("aria-expanded") !== "true");
  else if (!event.target.closest("#site-menu")) setMenu(false);
});

document.addEventListener("keydown", (event) => {
  const button = document.querySelector(".topbar .menu-button");
  if (event.key === "Escape" && button?.getAttribute("aria-expanded") === "true") {
    setMenu(false);
    button.focus();
  }
});

/* ---------- Filters: submit on change ---------- */
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-autosubmit]");
  if (form) form.requestSubmit();
});

/* ---------- Favourites: the star on a tile and in the lightbox ---------- */
function showFavorite(id, on) {
  document.querySelectorAll(`[data-action="favorite"][data-photo-id="${id}"]`).forEach((button) => {
    button.setAttribute("aria-pressed", String(on));
  });
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest('[data-action="favorite"]');
  if (!button) return;
  event.preventDefault();
  const id = button.dataset.photoId;
  const on = button.getAttribute("aria-pressed") !== "true";
  showFavorite(id, on);  // at once; put back if the server says no
  try {
    await api("PATCH", `/api/photos/${id}/`, { is_favorite: on });
  } catch (error) {
    showFavorite(id, !on);
    toast(error.message, { kind: "error" });
  }
});

/* ---------- The grid's look: tile size and justified rows, remembered in cookies the server reads ---------- */
const LOOK_MAX_AGE = 365 * 24 * 3600;

function remember(name, value) {
  document.cookie = `${name}=${value}; path=/; max-age=${LOOK_MAX_AGE}; samesite=lax`;
}

function zoom(by) {
  const grid = document.getElementById("grid");
  if (!grid?.dataset.zooms) return;
  const zooms = grid.dataset.zooms.split(" ");
  const now = zooms.findIndex((name) => grid.classList.contains(`zoom-${name}`));
  const next = zooms[Math.min(zooms.length - 1, Math.max(0, now + by))];
  zooms.forEach((name) => grid.classList.toggle(`zoom-${name}`, name === next));
  remember("grid_zoom", next);
  document.querySelector('[data-action="zoom-out"]').disabled = next === zooms[0];
  document.querySelector('[data-action="zoom-in"]').disabled = next === zooms[zooms.length - 1];
}

function toggleJustified(button) {
  const on = document.getElementById("grid").classList.toggle("justified");
  button.setAttribute("aria-pressed", String(on));
  remember("grid_layout", on ? "justified" : "square");
}

document.addEventListener("click", (event) => {
  const control = event.target.closest('[data-action="zoom-in"], [data-action="zoom-out"], [data-action="justify"]');
  if (!control) return;
  if (control.dataset.action === "justify") toggleJustified(control);
  else zoom(control.dataset.action === "zoom-in" ? 1 : -1);
});

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || document.querySelector("dialog[open]")) return;
  if (event.target.matches("input, textarea, select, [contenteditable]")) return;
  if (event.key === "+" || event.key === "=") zoom(1);
  else if (event.key === "-") zoom(-1);
});

document.addEventListener("DOMContentLoaded", () => zoom(0));

// A stack (a studio step's alternatives, none chosen yet) opened in place: its tiles replace it.
async function expandStack(tile) {
  const link = tile.querySelector(".photo-link");
  const response = await fetch(link.getAttribute("hx-get"), { credentials: "same-origin", headers: { "HX-Request": "true" } });
  if (!response.ok) throw new Error(await apiError(response));
  const template = document.createElement("template");
  template.innerHTML = await response.text();
  const added = Array.from(template.content.querySelectorAll(".tile"));
  tile.replaceWith(template.content);
  added.forEach((each) => htmx.process(each));
  return added;
}

/* ---------- The date scrubber along the grid's edge ---------- */
// The timeline drawn to scale (every month's share of the height is its share of the photos): pointing shows
// the month, a click or the end of a drag starts the grid there (the month's link, the jump list's ?from=).
const scrubber = () => document.querySelector("nav.scrubber");
let scrubbing = false;

function layoutScrubber() {
  const nav = scrubber();
  if (!nav) return;
  nav.querySelectorAll("[data-count]").forEach((el) => { el.style.flexGrow = el.dataset.count; });
  // A year too short for its label shows none, rather than one over the next.
  let free = -Infinity;
  nav.querySelectorAll(".scrubber-year").forEach((year) => {
    const { top } = year.getBoundingClientRect();
    year.classList.toggle("crowded", top < free);
    if (top >= free) free = top + 15;
  });
  markScrubberPosition();
}

function monthAt(y) {
  const months = Array.from(scrubber().querySelectorAll(".scrubber-month"));
  return months.find((month) => y <= month.getBoundingClientRect().bottom) || months[months.length - 1];
}

function pointAt(y) {
  const nav = scrubber();
  const month = monthAt(y);
  const label = nav.querySelector(".scrubber-label");
  if (!month || !label) return null;
  nav.querySelectorAll(".scrubber-month.pointed").forEach((el) => el.classList.remove("pointed"));
  month.classList.add("pointed");
  label.textContent = month.dataset.label;
  label.style.top = `${Math.max(0, y - nav.getBoundingClientRect().top)}px`;
  label.hidden = false;
  return month;
}

function leaveScrubber() {
  const nav = scrubber();
  nav?.querySelector(".scrubber-label")?.setAttribute("hidden", "");
  nav?.querySelectorAll(".pointed").forEach((el) => el.classList.remove("pointed"));
}

// The month of the day header at the top of the window, marked on the scrubber.
function markScrubberPosition() {
  const nav = scrubber();
  if (!nav) return;
  let month = null;
  for (const header of document.querySelectorAll("#grid .day-header")) {
    if (header.getBoundingClientRect().top > window.innerHeight / 3) break;
    month = header.dataset.month;
  }
  month = month || document.querySelector("#grid .day-header")?.dataset.month;
  nav.querySelectorAll(".scrubber-month").forEach((el) => el.classList.toggle("current", el.dataset.month === month));
}

document.addEventListener("pointerdown", (event) => {
  const nav = event.target.closest("nav.scrubber");
  if (!nav || !nav.querySelector(".scrubber-month") || event.button > 0) return;
  event.preventDefault();
  scrubbing = true;
  nav.setPointerCapture(event.pointerId);
  pointAt(event.clientY);
});

document.addEventListener("pointermove", (event) => {
  if (scrubbing || event.target.closest?.("nav.scrubber .scrubber-track")) pointAt(event.clientY);
  else leaveScrubber();
});

document.addEventListener("pointerup", (event) => {
  if (!scrubbing) return;
  scrubbing = false;
  const month = pointAt(event.clientY);
  if (month) window.location.assign(month.href);
});

document.addEventListener("pointercancel", () => { scrubbing = false; leaveScrubber(); });
// The pointer's end of a drag navigates (above); the links' own clicks would navigate a second time.
document.addEventListener("click", (event) => {
  if (event.target.closest("nav.scrubber")) event.preventDefault();
});
document.addEventListener("htmx:afterSettle", (event) => {
  if (event.detail.target.matches?.("nav.scrubber")) layoutScrubber();
  else if (event.detail.target.closest?.("#grid")) markScrubberPosition();
});
let scrollFrame = 0;
window.addEventListener("scroll", () => {
  if (!scrollFrame) scrollFrame = requestAnimationFrame(() => { scrollFrame = 0; markScrubberPosition(); });
}, { passive: true });
window.addEventListener("resize", layoutScrubber);

/* ---------- Lightbox ---------- */
// The open photo is in the address (?photo=<id>): a link to it opens the lightbox, and Back closes it. Opening
// adds one history entry; moving to the next photo replaces it, so Back leaves the lightbox, not the photo.
const lightbox = () => document.getElementById("lightbox");
const PHOTO_PARAM = "photo";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
let currentTile = null;
let shownPhotoId = null;

function tiles() {
  return Array.from(document.querySelectorAll("#grid .tile[data-photo-id]"));
}

const tileOf = (id) => document.querySelector(`#grid .tile[data-photo-id="${id}"]`);

// The photo after a tile (or before it, for the last one): where the lightbox goes when the tile leaves the grid.
function neighbour(tile) {
  const all = tiles();
  const index = all.indexOf(tile);
  return index < 0 ? null : all[index + 1] || all[index - 1] || null;
}

function openTile(tile) {
  if (!tile) return;
  currentTile = tile;
  shownPhotoId = tile.dataset.photoId;
  // A gallery tile is the link itself; a trash tile holds a link beside its Restore button. A stack's link
  // opens the stack; its lightbox shows the stack's first photo.
  const link = tile.matches("[hx-get]") ? tile : tile.querySelector("[hx-get]");
  const url = link.dataset.lightboxUrl || link.getAttribute("hx-get");
  htmx.ajax("GET", url, { target: "#lightbox-body", swap: "innerHTML" });
}

// A photo named in the address: its tile if the grid has loaded it, else straight from the server.
function openPhoto(id) {
  const tile = tileOf(id);
  if (tile) { openTile(tile); return; }
  const dialog = lightbox();
  if (!dialog || !UUID.test(id)) return;
  currentTile = null;
  shownPhotoId = id;
  const url = dialog.dataset.photoUrl.replace("{id}", id);
  htmx.ajax("GET", url, { target: "#lightbox-body", swap: "innerHTML" });
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

function addressWith(id) {
  const url = new URL(window.location.href);
  if (id) url.searchParams.set(PHOTO_PARAM, id); else url.searchParams.delete(PHOTO_PARAM);
  return url.toString();
}

document.addEventListener("htmx:afterSwap", (event) => {
  const dialog = lightbox();
  if (!dialog || event.detail.target.id !== "lightbox-body") return;
  const state = { lightbox: shownPhotoId };
  if (dialog.open) {
    history.replaceState({ ...history.state, ...state }, "", addressWith(shownPhotoId));
  } else {
    const inAddress = new URL(window.location.href).searchParams.get(PHOTO_PARAM);
    if (inAddress !== shownPhotoId) history.pushState(state, "", addressWith(shownPhotoId));
    // Arrived by a link to the photo: closing takes the photo out of the address instead of going Back.
    else if (!history.state?.lightbox) history.replaceState({ ...state, entered: true }, "", window.location.href);
    dialog.showModal();
  }
});

// However it closes (Escape, the close button, a swipe, a click beside the photo), the address follows.
document.addEventListener("close", (event) => {
  if (event.target !== lightbox()) return;
  shownPhotoId = null;
  if (!history.state?.lightbox) return;  // Back closed it: the address has moved already
  if (history.state.entered) history.replaceState(null, "", addressWith(null));
  else history.back();
}, true);

window.addEventListener("popstate", () => {
  const dialog = lightbox();
  if (!dialog) return;
  const id = new URL(window.location.href).searchParams.get(PHOTO_PARAM);
  if (!id && dialog.open) dialog.close();
  else if (id && id !== shownPhotoId) openPhoto(id);
});

document.addEventListener("DOMContentLoaded", () => {
  const id = new URL(window.location.href).searchParams.get(PHOTO_PARAM);
  if (id && lightbox()) openPhoto(id);
});

document.addEventListener("htmx:beforeRequest", (event) => {
  const tile = event.detail.elt.closest?.(".tile[data-photo-id]");
  if (tile && tile.closest("#grid") && event.detail.target?.id === "lightbox-body") {
    currentTile = tile;
    shownPhotoId = tile.dataset.photoId;
  }
});

document.addEventListener("keydown", (event) => {
  const dialog = lightbox();
  if (!dialog || !dialog.open || event.target.matches("input, textarea, select")) return;
  if (event.key === "ArrowRight") { event.preventDefault(); step(1); }
  else if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
  else if (event.key === "Delete") { event.preventDefault(); dialog.querySelector('[data-action="delete"]')?.click(); }
});

// Touch: swipe left or right for the next or previous photo, down to close. The photo follows the finger.
let swipe = null;
const SWIPE_DISTANCE = 60;

function swipeImage() {
  return lightbox()?.querySelector(".lightbox-stage img");
}

document.addEventListener("touchstart", (event) => {
  swipe = null;
  if (event.touches.length !== 1 || !event.target.closest("#lightbox .lightbox-stage")) return;
  swipe = { x: event.touches[0].clientX, y: event.touches[0].clientY, dx: 0, dy: 0 };
}, { passive: true });

document.addEventListener("touchmove", (event) => {
  if (!swipe) return;
  if (event.touches.length !== 1) { swipe = null; return; }  // a pinch: leave it to the browser's zoom
  swipe.dx = event.touches[0].clientX - swipe.x;
  swipe.dy = event.touches[0].clientY - swipe.y;
  const image = swipeImage();
  const across = Math.abs(swipe.dx) > Math.abs(swipe.dy);
  if (image) image.style.transform = across ? `translateX(${swipe.dx}px)` : `translateY(${Math.max(0, swipe.dy)}px)`;
}, { passive: true });

function endSwipe() {
  if (!swipe) return;
  const { dx, dy } = swipe;
  swipe = null;
  const image = swipeImage();
  if (image) image.style.transform = "";
  if (Math.abs(dx) >= SWIPE_DISTANCE && Math.abs(dx) > Math.abs(dy)) step(dx < 0 ? 1 : -1);
  else if (dy >= SWIPE_DISTANCE && dy > Math.abs(dx)) lightbox()?.close();
}

document.addEventListener("touchend", endSwipe, { passive: true });
document.addEventListener("touchcancel", () => { swipe = null; swipeImage()?.style.removeProperty("transform"); }, { passive: true });

async function trashPhoto(id) {
  await api("DELETE", `/api/photos/${id}/`);
  const tile = tileOf(id);
  const following = neighbour(tile);
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

// From the trash: the photo leaves the trash's grid (and its count); its own page shows it restored.
async function restorePhoto(id) {
  await api("POST", `/api/photos/${id}/restore/`);
  const tile = tileOf(id);
  if (!tile) { window.location.reload(); return; }
  const following = neighbour(tile);
  tile.remove();
  adjustCount(-1);
  const dialog = lightbox();
  if (dialog?.open) {
    if (following) openTile(following); else dialog.close();
  }
  toast("Restored to the gallery.");
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
    else if (action === "restore") await restorePhoto(control.dataset.photoId);
    else if (action === "close-uploads") document.getElementById("upload-panel").hidden = true;
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
