// Albums and share links on the owner's pages: selecting photos in a grid and acting on them all at once (albums,
// favourites, trash, a ZIP download), the album picker in the lightbox, drag-to-reorder on an album page, and the share dialog. Every change goes through the
// JSON API (api(), toast() and adjustCount() come from app.js, which loads first); the pages themselves only render.
"use strict";

const grid = () => document.getElementById("grid");
const selectedTiles = () => Array.from(document.querySelectorAll("#grid .tile.selected"));
const selectedIds = () => selectedTiles().map((tile) => tile.dataset.photoId);
const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

async function fragment(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } });
  if (!response.ok) throw new Error(await apiError(response));
  return response.text();
}

// A modal built from server-rendered HTML; removed from the page when closed.
async function openDialog(url, { wrap = true } = {}) {
  const html = await fragment(url);
  document.body.insertAdjacentHTML("beforeend", wrap ? `<dialog class="picker-dialog">${html}</dialog>` : html);
  const dialog = document.body.lastElementChild;
  dialog.addEventListener("close", () => dialog.remove());
  htmx.process(dialog);
  dialog.showModal();
  return dialog;
}

function removeTiles(ids) {
  const tiles = ids.map((id) => document.querySelector(`#grid .tile[data-photo-id="${id}"]`)).filter(Boolean);
  tiles.forEach((tile) => tile.remove());
  adjustCount(-tiles.length);
}

/* ---------- Selecting photos in a grid ---------- */

function setSelecting(on) {
  document.body.classList.toggle("selecting", on);
  document.querySelectorAll('[data-action="select-mode"]').forEach((button) => button.setAttribute("aria-pressed", String(on)));
  if (!on) selectedTiles().forEach((tile) => tile.classList.remove("selected"));
  anchorTile = null;
  updateSelectionBar();
}

function updateSelectionBar() {
  const bar = document.getElementById("selection-bar");
  if (!bar) return;
  const count = selectedTiles().reduce((sum, tile) => sum + Number(tile.dataset.stackSize || 1), 0);
  bar.hidden = !document.body.classList.contains("selecting");
  bar.querySelector("[data-selection-count]").textContent = count ? `${plural(count, "photo")} selected` : "Click photos to select them";
  bar.querySelectorAll("button.button").forEach((button) => { button.disabled = count === 0; });
}

// The tile clicked last without Shift: a Shift-click gives every tile from there to the clicked one its state.
let anchorTile = null;

// Captured before htmx sees the click, so a tile toggles its selection instead of opening the lightbox.
document.addEventListener("click", (event) => {
  if (!document.body.classList.contains("selecting")) return;
  const tile = event.target.closest("#grid .tile[data-photo-id]");
  if (!tile) return;
  event.preventDefault();
  event.stopPropagation();
  const all = Array.from(document.querySelectorAll("#grid .tile[data-photo-id]"));
  if (event.shiftKey && anchorTile && all.includes(anchorTile)) {
    const [from, to] = [all.indexOf(anchorTile), all.indexOf(tile)].sort((a, b) => a - b);
    const selected = anchorTile.classList.contains("selected");
    all.slice(from, to + 1).forEach((each) => each.classList.toggle("selected", selected));
  } else {
    tile.classList.toggle("selected");
    anchorTile = tile;
  }
  updateSelectionBar();
}, true);

// A selected stack stands for all its photos: before an action, its tiles take its place, selected.
async function openSelectedStacks() {
  for (const stack of selectedTiles().filter((tile) => tile.dataset.stack)) {
    const added = await expandStack(stack);
    added.forEach((tile) => tile.classList.add("selected"));
    if (anchorTile === stack) anchorTile = added[added.length - 1] || null;
  }
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && document.body.classList.contains("selecting") && !document.querySelector("dialog[open]")) {
    setSelecting(false);
  }
});

async function chooseAlbum(fromAlbumId) {
  const url = `/albums/choices/${fromAlbumId ? `?from=${fromAlbumId}` : ""}`;
  const dialog = await openDialog(url);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(null));
    dialog.addEventListener("click", (event) => {
      const choice = event.target.closest("[data-choose-album]");
      if (!choice) return;
      resolve({ id: choice.dataset.chooseAlbum, name: choice.dataset.albumName });
      dialog.close();
    });
    dialog.querySelector("[data-album-create-choose]").addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const album = await (await api("POST", "/api/albums/", { name: event.target.name.value })).json();
        resolve({ id: album.id, name: album.name });
        dialog.close();
      } catch (error) { toast(error.message, { kind: "error" }); }
    });
  });
}

async function addSelectedToAlbum() {
  const ids = selectedIds();
  const album = await chooseAlbum(null);
  if (!album) return;
  const { added } = await (await api("POST", `/api/albums/${album.id}/photos/`, { photo_ids: ids })).json();
  const already = ids.length - added;
  toast(`Added ${plural(added, "photo")} to ${album.name}${already ? ` (${already} already there)` : ""}.`);
  setSelecting(false);
  // On Uncategorized, photos that are now in an album no longer belong on the page.
  if (window.location.pathname === "/albums/uncategorized/") removeTiles(ids);
}

async function moveSelected(fromAlbumId) {
  const ids = selectedIds();
  const album = await chooseAlbum(fromAlbumId);
  if (!album) return;
  await api("POST", "/api/albums/move/", { photo_ids: ids, from_album_id: fromAlbumId, to_album_id: album.id });
  removeTiles(ids);
  toast(`Moved ${plural(ids.length, "photo")} to ${album.name}.`);
  setSelecting(false);
}

async function removeSelected(albumId) {
  const ids = selectedIds();
  const { removed } = await (await api("DELETE", `/api/albums/${albumId}/photos/`, { photo_ids: ids })).json();
  removeTiles(ids);
  toast(`Removed ${plural(removed, "photo")} from the album; they are still in the gallery.`);
  setSelecting(false);
}

/* ---------- Bulk actions on the selection: favourite, trash, restore, download ---------- */

// A day header's "Choose day": select mode with every loaded photo of that day selected. (Not "Select day":
// the Select button's name must stay the only one starting so.)
function selectDay(day) {
  if (!document.body.classList.contains("selecting")) setSelecting(true);
  document.querySelectorAll(`#grid .tile[data-day="${day}"]`).forEach((tile) => tile.classList.add("selected"));
  updateSelectionBar();
}

async function bulk(action, ids) {
  return (await (await api("POST", "/api/photos/bulk/", { action, photo_ids: ids })).json()).changed;
}

// The duplicates page: keep the chosen copy, move the others of its group to the trash.
async function keepDuplicate(button) {
  const group = button.closest("[data-duplicate-group]");
  const others = Array.from(group.querySelectorAll("[data-photo-id]"), (el) => el.dataset.photoId).filter((id) => id !== button.dataset.photoId);
  const changed = await bulk("trash", others);
  group.remove();
  toast(`Kept one; moved ${changed} ${changed === 1 ? "copy" : "copies"} to the trash.`, {
    action: { label: "Undo", run: async () => { await bulk("restore", others); window.location.reload(); } },
  });
}

async function favoriteSelected() {
  const ids = selectedIds();
  // Favourite them all, unless they all are already: then the button takes the stars off.
  const pressed = (id) => document.querySelector(`#grid .tile[data-photo-id="${id}"] [data-action="favorite"]`)?.getAttribute("aria-pressed") === "true";
  const on = !ids.every(pressed);
  await bulk(on ? "favorite" : "unfavorite", ids);
  ids.forEach((id) => showFavorite(id, on));
  toast(on ? `${plural(ids.length, "photo")} marked as favourites.` : `${plural(ids.length, "photo")} no longer favourites.`);
  setSelecting(false);
}

async function trashSelected() {
  const ids = selectedIds();
  const changed = await bulk("trash", ids);
  removeTiles(ids);
  setSelecting(false);
  toast(`Moved ${plural(changed, "photo")} to the trash.`, {
    action: { label: "Undo", run: async () => { await bulk("restore", ids); window.location.reload(); } },
  });
}

async function restoreSelected() {
  const ids = selectedIds();
  const changed = await bulk("restore", ids);
  removeTiles(ids);
  setSelecting(false);
  toast(`Restored ${plural(changed, "photo")}.`);
}

// A form post, not fetch: the browser then saves the ZIP to disk as it streams instead of holding it in memory.
function downloadSelected() {
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/api/photos/download/";
  form.hidden = true;
  const field = (name, value) => {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.append(input);
  };
  field("csrfmiddlewaretoken", csrfToken());
  selectedIds().forEach((id) => field("photo_ids", id));
  document.body.append(form);
  form.submit();
  form.remove();
  toast(`Preparing a ZIP of ${plural(selectedIds().length, "photo")}…`);
  setSelecting(false);
}

/* ---------- Albums: create, rename, archive, delete ---------- */

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.matches("[data-album-create]")) {
    event.preventDefault();
    try {
      const album = await (await api("POST", "/api/albums/", { name: form.name.value })).json();
      window.location.assign(album.page_url);
    } catch (error) { toast(error.message, { kind: "error" }); }
  } else if (form.matches("[data-album-rename]")) {
    event.preventDefault();
    try {
      await api("PATCH", `/api/albums/${grid().dataset.albumId}/`, { name: form.name.value, description: form.description.value });
      window.location.reload();
    } catch (error) { toast(error.message, { kind: "error" }); }
  } else if (form.matches("[data-share-create]")) {
    event.preventDefault();
    await createShare(form);
  }
});

/* ---------- Reordering an album by dragging ---------- */

let dragged = null;
let orderBefore = "";

function prepareDragging(root = document) {
  if (!grid()?.hasAttribute("data-reorder")) return;
  root.querySelectorAll?.(".tile[data-photo-id]").forEach((tile) => {
    tile.draggable = true;
    tile.querySelector("img")?.setAttribute("draggable", "false");
  });
}

const loadedOrder = () => Array.from(document.querySelectorAll("#grid .tile[data-photo-id]"), (tile) => tile.dataset.photoId);

document.addEventListener("dragstart", (event) => {
  const tile = event.target.closest?.("#grid[data-reorder] .tile[data-photo-id]");
  if (!tile || document.body.classList.contains("selecting")) return;
  dragged = tile;
  orderBefore = loadedOrder().join();
  event.dataTransfer.effectAllowed = "move";
  event.dataTransfer.setData("text/plain", tile.dataset.photoId);
  tile.classList.add("dragging");
});

document.addEventListener("dragover", (event) => {
  if (!dragged) return;
  const over = event.target.closest?.("#grid .tile[data-photo-id]");
  event.preventDefault();
  if (!over || over === dragged) return;
  const box = over.getBoundingClientRect();
  const after = event.clientX > box.left + box.width / 2;
  over.parentNode.insertBefore(dragged, after ? over.nextSibling : over);
});

document.addEventListener("drop", (event) => {
  if (dragged) event.preventDefault();
});

document.addEventListener("dragend", async () => {
  if (!dragged) return;
  dragged.classList.remove("dragging");
  dragged = null;
  const order = loadedOrder();
  if (order.join() === orderBefore) return;
  const albumId = grid().dataset.albumId;
  try {
    // The grid may hold only the first pages: the photos not loaded yet keep their order after these.
    if (grid().querySelector(".sentinel")) {
      const album = await (await api("GET", `/api/albums/${albumId}/`)).json();
      const loaded = new Set(order);
      order.push(...album.photo_ids.filter((id) => !loaded.has(id)));
    }
    await api("POST", `/api/albums/${albumId}/reorder/`, { photo_ids: order });
    toast("Order saved.", { timeout: 2000 });
  } catch (error) {
    toast(`${error.message} Reloading the album…`, { kind: "error" });
    setTimeout(() => window.location.reload(), 1500);
  }
});

/* ---------- The album picker in the lightbox ---------- */

async function mountPicker(frame) {
  const info = frame.querySelector(".lightbox-info");
  // Not for photos in the trash (they offer Restore), and once per lightbox body.
  if (!info || info.querySelector('[data-action="restore"], .lightbox-albums')) return;
  const album = grid()?.dataset.albumId;
  try {
    const html = await fragment(`/photos/${frame.dataset.photoId}/albums/${album ? `?album=${album}` : ""}`);
    if (frame.isConnected) info.querySelector(".actions").insertAdjacentHTML("beforebegin", html);
  } catch { /* the lightbox works without it */ }
}

document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target.id === "lightbox-body") {
    const frame = event.detail.target.querySelector(".lightbox-frame[data-photo-id]");
    if (frame) mountPicker(frame);
  } else {
    prepareDragging();  // tiles of a page the infinite scroll just added
  }
});

document.addEventListener("DOMContentLoaded", () => {
  prepareDragging();
  const frame = document.querySelector(".photo-page .lightbox-frame[data-photo-id]");
  if (frame) mountPicker(frame);
});

// A download limit only means something while downloads are allowed.
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-share-create] [name=allow_download]")) {
    event.target.form.max_downloads.disabled = !event.target.checked;
  }
});

document.addEventListener("change", async (event) => {
  const toggle = event.target.closest("[data-album-toggle]");
  if (!toggle) return;
  const albumId = toggle.dataset.albumToggle;
  const photoId = toggle.dataset.photoId;
  const name = toggle.closest("label").textContent.trim();
  try {
    await api(toggle.checked ? "POST" : "DELETE", `/api/albums/${albumId}/photos/`, { photo_ids: [photoId] });
    toast(toggle.checked ? `Added to ${name}.` : `Removed from ${name}.`, { timeout: 2500 });
    if (grid()?.dataset.albumId === albumId && !toggle.checked) removeTiles([photoId]);
  } catch (error) {
    toggle.checked = !toggle.checked;
    toast(error.message, { kind: "error" });
  }
});

/* ---------- Share links ---------- */

async function refreshShareRows(from) {
  const list = from.closest("[data-share-list]") || document.querySelector(".share-dialog [data-share-list]");
  if (list) {
    const form = list.closest("dialog").querySelector("[data-share-create]");
    list.innerHTML = await fragment(form.dataset.rowsUrl);
  } else {
    document.querySelector("[data-share-rows]").outerHTML = await fragment(window.location.href);
  }
}

async function createShare(form) {
  const error = form.querySelector("[data-share-error]");
  const number = (name) => (form[name].value ? Number(form[name].value) : null);
  error.hidden = true;
  try {
    const link = await (await api("POST", form.dataset.shareCreate, {
      expires_in: form.expires_in.value,
      max_views: number("max_views"),
      max_downloads: form.allow_download.checked ? number("max_downloads") : null,
      allow_download: form.allow_download.checked,
      show_details: form.show_details.checked,
      password: form.password.value,
    })).json();
    const created = form.closest("dialog").querySelector("[data-share-created]");
    created.hidden = false;
    created.querySelector("[data-share-url]").value = link.url;
    form.password.value = "";
    await refreshShareRows(form.closest("dialog").querySelector("[data-share-list]"));
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
  }
}

async function copyShareUrl(button) {
  const input = button.closest(".copy-row").querySelector("input");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    // The clipboard API needs a secure context (https or localhost); selecting lets the user copy by hand.
    input.select();
    if (!document.execCommand("copy")) { toast("Press Ctrl+C to copy the selected link."); return; }
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 2000);
}

async function revokeShare(button) {
  if (!window.confirm("Revoke this link? Everyone who has it will get “not found” from now on.")) return;
  await api("DELETE", `/api/shares/${button.dataset.shareId}/`);
  toast("Link revoked.");
  await refreshShareRows(button);
}

/* ---------- Buttons ---------- */

document.addEventListener("click", async (event) => {
  const control = event.target.closest("[data-action]");
  if (!control) return;
  const { action } = control.dataset;
  try {
    if (action === "add-to-album" || action.startsWith("bulk-")) await openSelectedStacks();
    if (action === "select-mode") setSelecting(!document.body.classList.contains("selecting"));
    else if (action === "select-none") setSelecting(false);
    else if (action === "add-to-album") await addSelectedToAlbum();
    else if (action === "move-to-album") await moveSelected(control.dataset.albumId);
    else if (action === "remove-from-album") await removeSelected(control.dataset.albumId);
    else if (action === "select-day") selectDay(control.dataset.day);
    else if (action === "keep-duplicate") await keepDuplicate(control);
    else if (action === "bulk-favorite") await favoriteSelected();
    else if (action === "bulk-trash") await trashSelected();
    else if (action === "bulk-restore") await restoreSelected();
    else if (action === "bulk-download") downloadSelected();
    else if (action === "close-dialog") control.closest("dialog").close();
    else if (action === "share-album") await openDialog(`/shares/new/?album=${control.dataset.albumId}`, { wrap: false });
    else if (action === "share-photo") await openDialog(`/shares/new/?photo=${control.dataset.photoId}`, { wrap: false });
    else if (action === "copy-share-url") await copyShareUrl(control);
    else if (action === "revoke-share") await revokeShare(control);
    else if (action === "set-cover") {
      await api("PATCH", `/api/albums/${control.dataset.albumId}/`, { cover_photo_id: control.dataset.photoId });
      toast("Album cover set.");
    } else if (action === "rename-album" || action === "rename-cancel") {
      const form = document.querySelector("[data-album-rename]");
      form.hidden = action === "rename-cancel";
      if (!form.hidden) form.name.focus();
    } else if (action === "archive-album") {
      await api("PATCH", `/api/albums/${grid().dataset.albumId}/`, { is_archived: control.dataset.archived !== "true" });
      window.location.reload();
    } else if (action === "delete-album") {
      if (!window.confirm(`Delete the album “${control.dataset.albumName}”? Its photos stay in the gallery; its share links stop working.`)) return;
      await api("DELETE", `/api/albums/${grid().dataset.albumId}/`);
      window.location.assign("/albums/");
    }
  } catch (error) {
    toast(error.message, { kind: "error" });
  }
});
