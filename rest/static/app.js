// The queue page: live through Server-Sent Events, no framework, no build step.
"use strict";

const roomMatch = location.pathname.match(/^\/rooms\/([A-Za-z0-9_-]{1,64})\/?/);
const ROOM = roomMatch ? roomMatch[1] : "default";
const BASE = roomMatch ? `/rooms/${ROOM}` : "";
const $ = (id) => document.getElementById(id);

// now: now playing with its clock; nowAt: Redis's time (ms) its position was true at;
// clockOffset: Redis's time minus this browser's, from the last server_time seen.
const state = { version: -1, queue: [], length: 0, now: null, nowAt: 0, history: [],
                settings: {}, clockOffset: 0 };

// One voter id per browser: one ballot per track, whatever the tab.
function randomHex(bytes) {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}
const VOTER = localStorage.getItem("mq:voter") || `v-${randomHex(10)}`;
localStorage.setItem("mq:voter", VOTER);
const BALLOTS_KEY = `mq:ballots:${ROOM}`;
const ballots = JSON.parse(localStorage.getItem(BALLOTS_KEY) || "{}");
const ballotKey = (track) => `${track.id}@${track.added_at}`;

// -- talking to the API ----------------------------------------------------------------

// Who this browser is in the room: a host token (this tab only; a room started here
// opens with it from the URL fragment, which never reaches a server or a log) or a guest
// token (this browser, for this room).
const HOST_KEY = `mq:host:${ROOM}`;
const GUEST_KEY = `mq:guest:${ROOM}`;
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("host")) {
  sessionStorage.setItem(HOST_KEY, fragment.get("host"));
  history.replaceState(null, "", location.pathname + location.search);  // out of sight
}
const guest = JSON.parse(localStorage.getItem(GUEST_KEY) || "null");  // {guest, name, token}

async function api(method, path, body, base = BASE) {
  const headers = {};
  const token = sessionStorage.getItem(HOST_KEY) || (guest && guest.token);
  if (token) headers["Authorization"] = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(base + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
  } catch (err) {
    if (err.name === "TimeoutError") throw new Error("the server did not answer within 10 s; try again");
    throw new Error("the server cannot be reached; check your connection");
  }
  const node = response.headers.get("X-Node-Id");
  if (node) $("node-id").textContent = node;
  if (response.status === 304) return null;
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(data.detail || `${response.status} ${response.statusText}`);
  return data;
}

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}
function clearError() { $("error").hidden = true; }

async function attempt(action) {
  try {
    clearError();
    return await action();
  } catch (err) {
    showError(err.message);
    return null;
  }
}

// -- rendering ------------------------------------------------------------------------

function clock(seconds) {
  if (!seconds && seconds !== 0) return "–";
  seconds = Math.max(0, Math.floor(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  const ss = String(s).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
const plural = (n, word) => `${n} ${word}${Math.abs(n) === 1 ? "" : "s"}`;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) node.append(child);
  return node;
}

function trackInfo(track, extra) {
  let meta = `${track.artist} · ${track.duration ? clock(track.duration) : "length unknown"}`;
  if (track.added_by) meta += ` · added by ${mine(track) ? "you" : track.added_by.name}`;
  return el("div", { className: "info" },
    el("div", { className: "title" }, track.title),
    el("div", { className: "meta" }, extra ? `${meta} · ${extra}` : meta));
}

// One <li> per queued track, kept from one render to the next: a change updates the
// numbers and the order in place, so a click is never lost to a button replaced under the
// pointer between press and release, and the keyboard focus stays where it was.
const items = new Map();  // ballotKey -> { item, pos, count, up, down, track }

function voteButton(entry, up) {
  const label = `${up ? "Vote up" : "Vote down"} ${entry.track.title}`;
  const button = el("button", {
    type: "button", className: `vote ${up ? "up" : "down"}`, textContent: up ? "▲" : "▼",
    title: label,
  });
  button.setAttribute("aria-label", label);
  button.dataset.id = String(entry.track.id);
  button.dataset.up = String(up);
  button.addEventListener("click", () => vote(entry.track, up));
  return button;
}

const mine = (track) => !!(guest && track.added_by && track.added_by.guest === guest.guest);

function queueItem(track) {
  const key = ballotKey(track);
  let entry = items.get(key);
  if (!entry) {
    entry = { track };
    entry.pos = el("span", { className: "pos" });
    entry.count = el("span", { className: "count" });
    entry.up = voteButton(entry, true);
    entry.down = voteButton(entry, false);
    entry.item = el("li", {}, entry.pos, trackInfo(track),
      el("div", { className: "votes" }, entry.up, entry.count, entry.down));
    entry.item.dataset.id = String(track.id);
    if (mine(track)) entry.item.classList.add("mine");
    items.set(key, entry);
  }
  entry.track = track;
  return entry;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function renderQueue() {
  const list = $("queue");
  const focused = document.activeElement;
  const shown = new Set();
  state.queue.forEach((track, i) => {
    const entry = queueItem(track);
    shown.add(ballotKey(track));
    setText(entry.pos, String(i + 1));
    setText(entry.count, String(track.votes));
    entry.count.setAttribute("aria-label", plural(track.votes, "vote"));
    const mine = ballots[ballotKey(track)];
    entry.up.setAttribute("aria-pressed", String(mine === 1));
    entry.down.setAttribute("aria-pressed", String(mine === -1));
    if (list.children[i] !== entry.item) list.insertBefore(entry.item, list.children[i] || null);
  });
  for (const [key, entry] of items) {
    if (!shown.has(key)) {
      entry.item.remove();
      items.delete(key);
    }
  }
  // (moving a focused button to its new place takes the focus away from it)
  if (focused && focused.isConnected && document.activeElement !== focused) focused.focus();
  $("queue-empty").hidden = state.length > 0;
  $("queue-count").textContent = state.length ? `(${state.length})` : "";
  const more = state.length - state.queue.length;
  $("queue-more").hidden = more <= 0;
  $("queue-more").textContent = more > 0 ? `… and ${plural(more, "more track")}` : "";
  if (guest) {
    const count = state.queue.filter(mine).length;
    $("mine-count").textContent = `${plural(count, "track")} of yours in the first ${state.queue.length}`;
  }
}

function renderNow() {
  const now = state.now;
  $("now-empty").hidden = !!now;
  $("now-track").hidden = !now;
  $("pause-resume").disabled = !now;
  if (!now) return;
  $("now-title").textContent = now.title;
  $("now-artist").textContent = now.artist;
  $("now-duration").textContent = now.duration ? clock(now.duration) : "unknown";
  $("now-votes").textContent = plural(now.votes, "vote");
  $("now-state").hidden = !now.paused && !now.fallback;
  $("now-state").textContent = now.paused ? "paused" : (now.fallback ? "a replay" : "");
  $("pause-resume").textContent = now.paused ? "Resume" : "Pause";
  const threshold = now.skip_threshold || 0;
  $("skip").hidden = threshold === 0;
  $("skip-count").textContent = threshold ? `${now.skip_votes} of ${threshold} skip votes` : "";
  tick();
}

// Where the play is now: its position at Redis's time nowAt, plus the time since by Redis's
// clock (this browser's clock, corrected by the offset), unless paused.
function tick() {
  const now = state.now;
  if (!now) return;
  const since = now.paused ? 0 : (Date.now() + state.clockOffset - state.nowAt) / 1000;
  const elapsed = now.position + Math.max(0, since);
  const shown = now.duration ? Math.min(elapsed, now.duration) : elapsed;
  $("now-elapsed").textContent = clock(shown);
  $("now-bar").style.width = now.duration ? `${Math.min(100, (100 * shown) / now.duration)}%` : "0";
}

function setNow(now, serverTime) {
  state.now = now;
  if (serverTime) {
    state.nowAt = Date.parse(serverTime);
    state.clockOffset = state.nowAt - Date.now();
  } else {
    state.nowAt = Date.now() + state.clockOffset;
  }
  renderNow();
}

function renderSettings() {
  const s = state.settings;
  const focused = document.activeElement;
  for (const [name, id] of [["skip_threshold", "set-skip-threshold"],
                            ["no_repeat_minutes", "set-no-repeat-minutes"],
                            ["fallback", "set-fallback"], ["max_per_guest", "set-max-per-guest"],
                            ["order", "set-order"]]) {
    if (focused !== $(id) && s[name] !== undefined) $(id).value = String(s[name]);
  }
  for (const [name, id] of [["autoplay", "set-autoplay"], ["require_guest", "set-require-guest"],
                            ["locked", "set-locked"]]) {
    if (s[name] !== undefined) $(id).checked = s[name];
  }
  if (state.now) {
    state.now.skip_threshold = s.skip_threshold;
    renderNow();
  }
}

function renderHistory() {
  $("history").replaceChildren(...state.history.slice(0, 20).map((track) => {
    const at = new Date(track.played_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const notes = [`played ${at}`, plural(track.votes, "vote")];
    if (track.skipped) notes.push("skipped");
    if (track.fallback) notes.push("a replay");
    return el("li", {}, trackInfo(track, notes.join(", ")));
  }));
  $("history-empty").hidden = state.history.length > 0;
}

// -- live updates ---------------------------------------------------------------------

function applySnapshot(data) {
  state.version = data.version;
  state.queue = data.queue;
  state.length = data.length;
  state.settings = data.settings || {};
  setNow(data.now_playing, data.server_time);
  renderQueue();
  renderSettings();
  loadHistory();
}

function loadHistory() {
  api("GET", "/history?limit=20").then((history) => {
    state.history = history || [];
    renderHistory();
  }).catch((err) => showError(err.message));
}

function applyChange(data) {
  if (data.version <= state.version) return;
  state.version = data.version;
  state.queue = data.queue;
  state.length = data.length;
  if (data.type === "play") {
    setNow(data.now_playing, data.server_time);
    loadHistory();  // (a skip marks the entry before; the history has it)
  } else if (data.type === "pause" || data.type === "resume" || data.type === "skip") {
    setNow(data.now_playing, data.server_time);
  } else if (data.type === "settings") {
    state.settings = data.settings;
    renderSettings();
  } else if (data.type === "clear") {
    state.now = null;
    state.history = [];
    renderNow();
    renderHistory();
  }
  renderQueue();
}

function connect() {
  const source = new EventSource(`${BASE}/events`);
  source.addEventListener("open", () => { $("status").textContent = "live"; });
  source.addEventListener("error", () => { $("status").textContent = "reconnecting…"; });
  source.addEventListener("snapshot", (e) => applySnapshot(JSON.parse(e.data)));
  for (const type of ["add", "remove", "vote", "play", "pause", "resume", "skip", "settings",
                      "clear", "ban", "unban"]) {
    source.addEventListener(type, (e) => applyChange(JSON.parse(e.data)));
  }
  source.addEventListener("banned", (e) => {  // this guest was banned: the stream is over
    source.close();
    $("status").textContent = "banned";
    showError(JSON.parse(e.data).detail);
  });
  // A page left for another (or kept in the back/forward cache) lets go of its stream:
  // a browser opens only six connections to one server, and streams left open by pages
  // already left would starve the next page's requests. Coming back reconnects, and the
  // stream's first event, a snapshot, brings the page up to date.
  addEventListener("pagehide", () => source.close(), { once: true });
}

addEventListener("pageshow", (event) => { if (event.persisted) connect(); });

// -- actions --------------------------------------------------------------------------

function applyWrite(data) {
  // The write's own reply carries the new head; the event with its version follows.
  if (data && data.queue) {
    state.queue = data.queue;
    renderQueue();
  }
}

// Votes go out one after another, in the order they were clicked: two quick clicks
// sent side by side could reach the server the other way round, and the earlier one win.
let voting = Promise.resolve();

function vote(track, up) {
  voting = voting.then(() => sendVote(track, up));
  return voting;
}

async function sendVote(track, up) {
  const data = await attempt(() => api("POST",
    `/vote?id=${encodeURIComponent(track.id)}&up=${up}&voter=${encodeURIComponent(VOTER)}`));
  if (!data) return;
  ballots[ballotKey(track)] = up ? 1 : -1;
  localStorage.setItem(BALLOTS_KEY, JSON.stringify(ballots));
  applyWrite(data);
}

function parseDuration(text) {
  text = text.trim();
  if (!text) return 0;
  const parts = text.split(":").map((p) => p.trim());
  if (!parts.every((p) => /^\d+$/.test(p)) || parts.length > 3) return NaN;
  return parts.reduce((total, p) => total * 60 + Number(p), 0);
}

async function addTrack(event) {
  event.preventDefault();
  // (not form.title / form.id: those are the form's own attributes)
  const duration = parseDuration($("add-duration").value);
  if (Number.isNaN(duration)) {
    showError("Length: write it as minutes:seconds (3:20) or seconds (200).");
    $("add-duration").focus();
    return;
  }
  const body = {
    id: $("add-id").value.trim() || `t-${randomHex(6)}`,
    title: $("add-title").value, artist: $("add-artist").value, duration,
  };
  const data = await attempt(() => api("POST", "/add_track", body));
  if (!data) return;
  applyWrite(data);
  event.target.reset();
  $("add-title").focus();
}

// -- finding a song in the catalogue ---------------------------------------------------
// Searches go out 150 ms after the last keystroke; each answer is shown only if it
// answers the latest query (an earlier, slower answer arriving last is dropped), and a
// query typed over an unanswered one cancels it.

const find = { seq: 0, shown: 0, tracks: [], active: -1, controller: null, timer: 0 };
const FIND_DELAY = 150;
const FIND_LIMIT = 8;

function findInput() {
  clearTimeout(find.timer);
  const query = $("find-input").value.trim();
  if (!query) {
    find.seq += 1;  // whatever is on its way is stale now
    showResults([], "");
    return;
  }
  find.timer = setTimeout(() => searchCatalogue(query), FIND_DELAY);
}

async function searchCatalogue(query) {
  const seq = ++find.seq;
  if (find.controller) find.controller.abort();
  const controller = find.controller = new AbortController();
  const timeout = setTimeout(() => controller.abort(), 10000);
  let data;
  try {
    const response = await fetch(
      `/catalogue/search?q=${encodeURIComponent(query)}&limit=${FIND_LIMIT}`,
      { signal: controller.signal });
    data = await response.json().catch(() => ({ detail: response.statusText }));
    if (!response.ok) throw new Error(data.detail || `${response.status}`);
  } catch (err) {
    if (seq !== find.seq) return;  // cancelled by a newer query
    showResults([], err.name === "AbortError" ? "The search did not answer; type again."
      : `Search failed: ${err.message}`);
    return;
  } finally {
    clearTimeout(timeout);
  }
  if (seq !== find.seq) return;  // a newer query was typed meanwhile
  find.shown = seq;
  showResults(data.tracks, data.tracks.length ? ""
    : `No song matches “${query}”: add it by hand below.`);
}

function showResults(tracks, status) {
  find.tracks = tracks;
  find.active = tracks.length ? 0 : -1;
  const list = $("find-results");
  list.replaceChildren(...tracks.map((track, i) => {
    const extra = track.album ? track.album : "";
    const item = el("li", { id: `find-${i}` }, trackInfo(track, extra),
      el("span", { className: "add-hint", textContent: "Add" }));
    item.setAttribute("role", "option");
    item.dataset.id = String(track.id);
    // mousedown, not click: the input keeps the focus, so typing can go on
    item.addEventListener("mousedown", (e) => { e.preventDefault(); addFound(i); });
    return item;
  }));
  list.hidden = !tracks.length;
  $("find-input").setAttribute("aria-expanded", String(tracks.length > 0));
  $("find-status").textContent = status;
  markActive();
}

function markActive() {
  const input = $("find-input");
  [...$("find-results").children].forEach((item, i) => {
    item.setAttribute("aria-selected", String(i === find.active));
    if (i === find.active) item.scrollIntoView({ block: "nearest" });
  });
  if (find.active >= 0) input.setAttribute("aria-activedescendant", `find-${find.active}`);
  else input.removeAttribute("aria-activedescendant");
}

function findKey(event) {
  const count = find.tracks.length;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    if (!count) return;
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    find.active = (find.active + step + count) % count;
    markActive();
  } else if (event.key === "Enter") {
    event.preventDefault();
    if (find.active >= 0) addFound(find.active);
  } else if (event.key === "Escape") {
    $("find-input").value = "";
    findInput();
  }
}

async function addFound(index) {
  const track = find.tracks[index];
  if (!track) return;
  const data = await attempt(() => api("POST", "/add_track", { id: track.id }));
  if (!data) return;
  applyWrite(data);
  $("find-status").textContent = `Added “${track.title}” to the queue.`;
}

async function playNext() {
  const data = await attempt(() => api("POST", "/play_next"));
  if (data) setNow(data.now_playing);
}

async function pauseOrResume() {
  const data = await attempt(() => api("POST", state.now && state.now.paused ? "/resume" : "/pause"));
  if (data) setNow(data.now_playing);
}

async function skip() {
  const data = await attempt(() => api("POST", `/skip?voter=${encodeURIComponent(VOTER)}`));
  if (data && !data.skipped) setNow(data.now_playing);
}

async function saveSettings(event) {
  event.preventDefault();
  const whole = (id) => Number($(id).value || "0");
  const body = {
    autoplay: $("set-autoplay").checked, skip_threshold: whole("set-skip-threshold"),
    fallback: $("set-fallback").value, no_repeat_minutes: whole("set-no-repeat-minutes"),
    require_guest: $("set-require-guest").checked, locked: $("set-locked").checked,
    max_per_guest: whole("set-max-per-guest"), order: $("set-order").value,
  };
  const data = await attempt(() => api("PATCH", "/settings", body));
  if (data) {
    state.settings = data;
    renderSettings();
  }
}

async function join(event) {
  event.preventDefault();
  const name = $("join-name").value.trim();
  if (!name) {
    showError("Your name: write how the others will see you.");
    return;
  }
  const data = await attempt(() => api("POST", "/guests", { name }));
  if (!data) return;
  localStorage.setItem(GUEST_KEY, JSON.stringify({ guest: data.guest, name: data.name, token: data.guest_token }));
  location.reload();  // the stream and every request go out as the guest from now on
}

function leave() {
  localStorage.removeItem(GUEST_KEY);
  location.reload();
}

async function newRoom() {
  const data = await attempt(() => api("POST", "/rooms", {}, ""));
  if (data) location.assign(`/rooms/${data.room}/#host=${encodeURIComponent(data.host_token)}`);
}

async function clearRoom() {
  if (!confirm(`Empty the room "${ROOM}": its queue, now playing and history?`)) return;
  await attempt(() => api("POST", "/clear"));
}

// -- start ----------------------------------------------------------------------------

function start() {
  $("room-name").textContent = ROOM === "default" ? "" : `· ${ROOM}`;
  document.title = ROOM === "default" ? "Music queue" : `Music queue · ${ROOM}`;
  const share = `${location.origin}/rooms/${ROOM}/`;
  $("share-link").href = share;
  $("share-link").textContent = share;
  $("share-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(share);
      $("share-copy").textContent = "Copied";
    } catch (err) {
      window.getSelection().selectAllChildren($("share-link"));
      $("share-copy").textContent = "Press Ctrl+C";
    }
  });
  $("admin-token").value = sessionStorage.getItem(HOST_KEY) || "";
  $("admin-token").addEventListener("change", (e) => {
    if (e.target.value) sessionStorage.setItem(HOST_KEY, e.target.value);
    else sessionStorage.removeItem(HOST_KEY);
  });
  $("host-role").hidden = !sessionStorage.getItem(HOST_KEY);
  $("host-role").textContent = "You are this room's host in this tab.";
  $("join-form").hidden = !!guest;
  $("joined").hidden = !guest;
  if (guest) $("joined-name").textContent = guest.name;
  $("join-form").addEventListener("submit", join);
  $("leave").addEventListener("click", leave);
  $("new-room").addEventListener("click", newRoom);
  if (!roomMatch) $("join-card").hidden = true;  // guests join rooms, not the default one
  $("add-form").addEventListener("submit", addTrack);
  $("find-input").addEventListener("input", findInput);
  $("find-input").addEventListener("keydown", findKey);
  $("play-next").addEventListener("click", playNext);
  $("pause-resume").addEventListener("click", pauseOrResume);
  $("skip").addEventListener("click", skip);
  $("settings-form").addEventListener("submit", saveSettings);
  $("clear-room").addEventListener("click", clearRoom);
  $("error-close").addEventListener("click", clearError);
  setInterval(tick, 1000);
  connect();
}

start();
