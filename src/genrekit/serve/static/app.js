// genrekit page: upload files to /v1/predict and stream sound to /v1/stream. No libraries, no build step.
"use strict";

const PARALLEL_UPLOADS = 2;
const TOKEN_KEY = "genrekit-token";
const state = { token: sessionStorage.getItem(TOKEN_KEY) || "", queue: [], running: 0, live: null, taggers: [] };
const TAGGER_TITLES = { msd: "Tags (Million Song Dataset)", mtt: "Tags (MagnaTagATune)" };
const TOP_TAGS = 5;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

const percent = (p) => `${(100 * p).toFixed(1)}%`;

function clock(seconds) {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function authHeaders() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

// ---- model line and token -------------------------------------------------------------------

async function loadModel() {
  const answer = await fetch("/v1/model", { headers: authHeaders() });
  if (answer.status === 401) {
    $("token-box").hidden = false;
    $("model-line").textContent = "This server needs a token.";
    return;
  }
  const model = await answer.json();
  $("token-box").hidden = true;
  state.taggers = model.taggers || [];
  const cv = model.metrics && model.metrics.cv_accuracy;
  const figure = cv ? `, ${percent(cv.mean)} accuracy (${model.metrics.protocol})` : "";
  $("model-line").textContent = `Model ${model.id}: ${model.classes.length} genres${figure}.`;
  loadLibrary();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, state.token);
  loadModel();
});

// ---- prediction cards -----------------------------------------------------------------------

function bars(probabilities) {
  const sorted = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  const list = el("ul", { class: "bars", "aria-label": "probability of each genre" });
  sorted.forEach(([genre, p], i) => {
    const fill = el("div", { class: "fill" });
    fill.style.width = percent(p);
    const label = i === 0 ? `${genre} (top)` : genre;
    list.append(el("li", { class: i === 0 ? "top" : "" },
      el("span", { class: "genre", text: label }), el("div", { class: "track" }, fill),
      el("span", { class: "value", text: percent(p) })));
  });
  return list;
}

function verdict(result) {
  const line = el("p", { class: "verdict" });
  if (result.genre === "not music") {
    line.append(el("strong", { text: "Not music" }), ` (music probability ${percent(result.music)})`);
  } else if (result.genre === "uncertain") {
    line.append("Uncertain — best guess ", el("strong", { text: result.best_guess }),
      ` (${percent(result.probability)})`);
  } else {
    line.append("Genre: ", el("strong", { text: result.genre }), ` (${percent(result.probability)})`);
  }
  return line;
}

// The deep tags of a file (served with `genrekit serve --tags`), one line per tagger.
function tagList(result) {
  if (!result.deep_tags || !result.deep_tags.length) return null;
  const byTagger = new Map();
  for (const t of result.deep_tags) {
    if (!byTagger.has(t.tagger)) byTagger.set(t.tagger, []);
    byTagger.get(t.tagger).push(`${t.tag} ${percent(t.probability)}`);
  }
  const list = el("dl", { class: "tags", "aria-label": "deep tags of the file" });
  for (const [tagger, tags] of byTagger) {
    list.append(el("dt", { text: TAGGER_TITLES[tagger] || tagger }), el("dd", { text: tags.join(", ") }));
  }
  return list;
}

function topGenre(probabilities) {
  return Object.entries(probabilities).sort((a, b) => b[1] - a[1])[0];
}

function timeline(result) {
  if (result.windows.length < 2) return null;
  const strip = el("div", { class: "timeline", role: "img",
    "aria-label": "genre of each 30-second window" });
  const rows = el("ol", { class: "history" });
  for (const w of result.windows) {
    const [genre, p] = topGenre(w.probabilities);
    strip.append(el("span", { title: `${clock(w.start)}–${clock(w.end)} ${genre}`, text: genre }));
    rows.append(el("li", { text: `${clock(w.start)}–${clock(w.end)}: ${genre} (${percent(p)})` }));
  }
  const details = el("details", {}, el("summary", { text: `${result.windows.length} windows of 30 s` }), rows);
  return el("div", { class: "windows" }, el("p", { class: "note", text: "Timeline:" }), strip, details);
}

function showResult(card, result) {
  const parts = [
    verdict(result),
    tagList(result),
    result.familiar ? null : el("p", { class: "note",
      text: "Note: this sound is unlike the music the model was trained on." }),
    el("p", { class: "note muted", text: `Length ${clock(result.duration)}` }),
    bars(result.probabilities),
    timeline(result)];
  card.querySelector(".body").replaceChildren(...parts.filter(Boolean));
  card.dataset.state = "done";
  card.dataset.genre = result.genre;
}

function showError(card, message) {
  card.classList.add("error");
  card.dataset.state = "error";
  card.querySelector(".body").replaceChildren(
    el("p", { class: "verdict", role: "alert", text: `Error: ${message}` }));
}

function newCard(file) {
  const progress = el("progress", { max: "100", value: "0", "aria-label": `uploading ${file.name}` });
  const card = el("article", { class: "card", "data-state": "uploading" },
    el("h3", { text: file.name }),
    el("div", { class: "body" }, el("p", { class: "note status", text: "Uploading…" }), progress));
  $("cards").prepend(card);
  return card;
}

function upload(file, card) {
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    const tags = state.taggers.length ? `&tags=${state.taggers.join(",")}&top_tags=${TOP_TAGS}` : "";
    request.open("POST", `/v1/predict?top_k=3&filename=${encodeURIComponent(file.name)}${tags}`);
    for (const [key, value] of Object.entries(authHeaders())) request.setRequestHeader(key, value);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    const progress = card.querySelector("progress");
    const status = card.querySelector(".status");
    request.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      progress.value = (100 * event.loaded) / event.total;
      status.textContent = `Uploading… ${Math.round(progress.value)}%`;
    };
    request.upload.onload = () => {
      status.textContent = "Analysing…";
      progress.removeAttribute("value");
      card.dataset.state = "analysing";
    };
    request.onload = () => {
      let answer = null;
      try { answer = JSON.parse(request.responseText); } catch (_) { answer = null; }
      if (request.status === 200 && answer) showResult(card, answer);
      else showError(card, (answer && answer.error) || `the server answered ${request.status}`);
      if (request.status === 401) loadModel();
      resolve();
    };
    request.onerror = () => { showError(card, "the server could not be reached"); resolve(); };
    request.send(file);
  });
}

function pump() {
  while (state.running < PARALLEL_UPLOADS && state.queue.length) {
    const [file, card] = state.queue.shift();
    state.running += 1;
    upload(file, card).then(() => { state.running -= 1; pump(); });
  }
}

function addFiles(files) {
  for (const file of files) state.queue.push([file, newCard(file)]);
  pump();
}

$("files").addEventListener("change", (event) => { addFiles(event.target.files); event.target.value = ""; });
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  addFiles(event.dataTransfer.files);
});

// ---- live mode --------------------------------------------------------------------------------

function liveCard(source) {
  const card = $("live");
  card.hidden = false;
  card.dataset.state = "connecting";
  card.replaceChildren(el("h3", { text: `Live: ${source}` }),
    el("p", { class: "verdict status", text: "Waiting for 3 s of sound…" }),
    el("div", { class: "live-facts" }), el("div", { class: "live-bars" }),
    el("ol", { class: "history", reversed: "" }));
  return card;
}

function liveError(message) {
  const card = $("live");
  card.querySelector(".status").textContent = `Error: ${message}`;
  card.dataset.state = "error";
}

function showUpdate(live, update) {
  const card = $("live");
  if (update.type === "error") {
    if (!live.ended) liveError(update.error); // once a played file has ended, the server closes the idle stream
    return;
  }
  if (update.type !== "update") return;
  const sent = live.sent.find(([total]) => total >= Math.round(update.audio_seconds * live.rate));
  const roundTrip = sent ? performance.now() - sent[1] : NaN;
  card.dataset.state = "updating";
  card.dataset.genre = update.genre;
  card.dataset.updates = String(Number(card.dataset.updates || 0) + 1);
  card.querySelector(".status").replaceWith(Object.assign(verdict(update), { className: "verdict status" }));
  card.querySelector(".live-facts").replaceChildren(
    el("span", { text: `last ${Math.round(update.window_seconds)} s of ${clock(update.audio_seconds)} heard` }),
    el("span", { class: "latency", text: `latency ${Math.round(update.latency_ms)} ms on the server` +
      (Number.isFinite(roundTrip) ? `, ${Math.round(roundTrip)} ms round trip` : "") }));
  card.querySelector(".live-bars").replaceChildren(bars(update.probabilities));
  const history = card.querySelector(".history");
  history.prepend(el("li", { text: `${clock(update.audio_seconds)}: ${update.genre}` +
    (update.genre === "uncertain" ? ` (best guess ${update.best_guess})` : "") +
    ` — ${Math.round(update.latency_ms)} ms` }));
  while (history.children.length > 5) history.lastChild.remove();
  live.sent = live.sent.filter(([total]) => total > Math.round(update.audio_seconds * live.rate));
}

function streamUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : "";
  return `${scheme}://${location.host}/v1/stream${query}`;
}

async function startLive(source, connectSource) {
  stopLive();
  const card = liveCard(source);
  const context = new AudioContext();
  const live = { context, rate: context.sampleRate, total: 0, sent: [], nodes: [], stream: null };
  state.live = live;
  $("live-stop").disabled = false;
  const socket = new WebSocket(streamUrl());
  live.socket = socket;
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      card.dataset.state = "streaming";
      connectSource(live);
    } else showUpdate(live, message);
  };
  socket.onclose = (event) => {
    if (state.live === live && card.dataset.state !== "error" && !live.stopped && !live.ended) {
      card.querySelector(".status").textContent =
        `Connection closed${event.reason ? `: ${event.reason}` : ""}.`;
    }
    if (state.live === live) stopLive();
  };
  socket.onopen = () => socket.send(JSON.stringify({ sample_rate: live.rate, encoding: "pcm_s16le", top_k: 3 }));
}

function sender(live) {
  // ScriptProcessorNode: works without a secure context or an extra module file.
  const processor = live.context.createScriptProcessor(4096, 1, 1);
  processor.onaudioprocess = (event) => {
    if (live.ended || live.socket.readyState !== WebSocket.OPEN) return;
    const samples = event.inputBuffer.getChannelData(0);
    const pcm = new Int16Array(samples.length);
    for (let i = 0; i < samples.length; i += 1) pcm[i] = Math.max(-1, Math.min(1, samples[i])) * 32767;
    live.socket.send(pcm.buffer);
    live.total += samples.length;
    live.sent.push([live.total, performance.now()]);
  };
  const mute = live.context.createGain();
  mute.gain.value = 0;
  processor.connect(mute).connect(live.context.destination);
  live.nodes.push(processor, mute);
  return processor;
}

$("live-mic").addEventListener("click", async () => {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    liveCard("microphone");
    liveError("the microphone needs https:// or localhost; try Play a file");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia(
      { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (error) {
    liveCard("microphone");
    liveError(`no microphone: ${error.message}`);
    return;
  }
  await startLive("microphone", (live) => {
    live.stream = stream;
    const input = live.context.createMediaStreamSource(stream);
    input.connect(sender(live));
    live.nodes.push(input);
  });
});

$("live-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  await startLive(file.name, async (live) => {
    let buffer;
    try {
      buffer = await live.context.decodeAudioData(await file.arrayBuffer());
    } catch (error) {
      liveError(`this browser cannot play ${file.name}`);
      return;
    }
    const player = live.context.createBufferSource();
    player.buffer = buffer;
    player.connect(sender(live));
    player.connect(live.context.destination);
    player.onended = () => {
      live.ended = true; // stop sending: silence after the end would count as sound
      $("live").querySelector("h3").textContent = `Live: ${file.name} (ended)`;
    };
    player.start();
    live.nodes.push(player);
  });
});

function stopLive() {
  const live = state.live;
  if (!live) return;
  live.stopped = true;
  state.live = null;
  for (const node of live.nodes) node.disconnect();
  if (live.stream) live.stream.getTracks().forEach((track) => track.stop());
  if (live.socket.readyState <= WebSocket.OPEN) live.socket.close();
  live.context.close();
  $("live-stop").disabled = true;
}

$("live-stop").addEventListener("click", stopLive);

// ---- library view (genrekit serve --db) -----------------------------------------------------

const SVG_NS = "http://www.w3.org/2000/svg";
const MAP_SIZE = { width: 640, height: 360, pad: 18 };
// Colour and shape both tell the genre, so the map reads without colour too (the legend names them).
const PALETTE = ["#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#16a085", "#7f6000", "#c2185b",
  "#34495e", "#6d4c41", "#00838f", "#9e9d24"];
const SHAPES = ["circle", "square", "triangle", "diamond", "cross", "down", "circle", "square", "triangle",
  "diamond", "cross", "down"];
const library = { styles: {}, selected: null };

const fileName = (path) => path.split(/[\\/]/).pop();

async function getJSON(url) {
  const answer = await fetch(url, { headers: authHeaders() });
  const body = await answer.json();
  return { status: answer.status, body };
}

async function loadLibrary() {
  const { status, body } = await getJSON("/v1/library/stats");
  if (status !== 200) return; // no --db: the section stays hidden
  $("library").hidden = false;
  const hours = body.hours.toFixed(body.hours < 10 ? 2 : 1);
  $("library-counts").textContent = `${body.catalogue}: ${body.files} files (${hours} h), `
    + `${body.uncertain} uncertain, ${body.failed} failed, ${body.gone} gone.`;
  const shift = $("library-shift");
  shift.hidden = !body.shift;
  if (body.shift) {
    shift.textContent = body.shift.summary + (body.shift.shifted
      ? ". This collection is unlike the model's training music: its genres are often wrong here"
        + " (learn your own with `genrekit library learn`)." : "");
  }
  const genres = Object.keys(body.genres).filter((g) => g !== "uncertain").sort();
  genres.forEach((genre, i) => {
    library.styles[genre] = { color: PALETTE[i % PALETTE.length], shape: SHAPES[i % SHAPES.length] };
  });
  library.styles.uncertain = { color: "#777", shape: "ring" };
  const counts = $("library-genres");
  counts.replaceChildren();
  for (const [genre, n] of Object.entries(body.genres).sort((a, b) => b[1] - a[1])) {
    counts.append(el("li", {}, legendMark(genre), el("span", { text: ` ${genre}: ${n}` })));
  }
  await Promise.all([loadMap(), searchTracks()]);
  loadLearned();
}

function styleOf(genre) {
  return library.styles[genre || "uncertain"] || library.styles.uncertain;
}

function marker(genre, x, y, r) {
  const { color, shape } = styleOf(genre);
  const points = {
    triangle: [[0, -1.2], [1.1, 0.9], [-1.1, 0.9]],
    down: [[0, 1.2], [1.1, -0.9], [-1.1, -0.9]],
    diamond: [[0, -1.3], [1.3, 0], [0, 1.3], [-1.3, 0]],
    cross: [[-0.4, -1.2], [0.4, -1.2], [0.4, -0.4], [1.2, -0.4], [1.2, 0.4], [0.4, 0.4], [0.4, 1.2],
      [-0.4, 1.2], [-0.4, 0.4], [-1.2, 0.4], [-1.2, -0.4], [-0.4, -0.4]],
  }[shape];
  let node;
  if (points) {
    node = document.createElementNS(SVG_NS, "polygon");
    node.setAttribute("points", points.map(([a, b]) => `${x + a * r},${y + b * r}`).join(" "));
  } else if (shape === "square") {
    node = document.createElementNS(SVG_NS, "rect");
    for (const [k, v] of Object.entries({ x: x - r, y: y - r, width: 2 * r, height: 2 * r })) node.setAttribute(k, v);
  } else {
    node = document.createElementNS(SVG_NS, "circle");
    for (const [k, v] of Object.entries({ cx: x, cy: y, r })) node.setAttribute(k, v);
  }
  node.setAttribute("fill", shape === "ring" ? "none" : color);
  node.setAttribute("stroke", shape === "ring" ? color : "#fff");
  node.setAttribute("stroke-width", shape === "ring" ? 2 : 0.8);
  return node;
}

function legendMark(genre) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("width", 14);
  svg.setAttribute("height", 14);
  svg.setAttribute("aria-hidden", "true");
  svg.append(marker(genre, 7, 7, 5));
  return svg;
}

async function loadMap() {
  const { status, body } = await getJSON("/v1/library/map");
  const box = $("library-map");
  box.replaceChildren();
  if (status !== 200) {
    box.append(el("p", { class: "muted", text: body.error }));
    return;
  }
  const { width, height, pad } = MAP_SIZE;
  const xs = body.points.map((p) => p.x);
  const ys = body.points.map((p) => p.y);
  const scale = (v, lo, hi, size) => pad + (hi > lo ? (v - lo) / (hi - lo) : 0.5) * (size - 2 * pad);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "map");
  svg.setAttribute("role", "img");
  const share = body.explained_variance.map((v) => percent(v));
  svg.setAttribute("aria-label", `Map of ${body.points.length} files on the two main axes of their features `
    + `(${share[0]} and ${share[1]} of the variance)`);
  for (const point of body.points) {
    const node = marker(point.genre, scale(point.x, x0, x1, width), height - scale(point.y, y0, y1, height), 5);
    node.setAttribute("class", "point");
    node.setAttribute("data-id", point.id);
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = `${fileName(point.path)} — ${point.genre || "no prediction"}`;
    node.append(title);
    node.addEventListener("click", () => showSimilar(point.id, point.path));
    svg.append(node);
  }
  const legend = el("ul", { class: "legend", "aria-label": "genres on the map" });
  for (const genre of Object.keys(library.styles)) {
    if (body.points.some((p) => (p.genre || "uncertain") === genre)) {
      legend.append(el("li", {}, legendMark(genre), el("span", { text: ` ${genre}` })));
    }
  }
  box.append(svg, legend, el("p", { class: "muted small",
    text: `Axes: the first two principal components (${share[0]} and ${share[1]} of the variance).` }));
}

async function searchTracks() {
  const q = encodeURIComponent($("library-q").value.trim());
  const { status, body } = await getJSON(`/v1/library/tracks?q=${q}&limit=50`);
  const list = $("library-tracks");
  list.replaceChildren();
  if (status !== 200) {
    list.append(el("li", { class: "muted", text: body.error }));
    return;
  }
  if (!body.tracks.length) list.append(el("li", { class: "muted", text: "No track matches." }));
  for (const track of body.tracks) {
    const genre = track.status === "ok" ? (track.genre || "no prediction") : track.status;
    const button = el("button", { type: "button", class: "link", text: fileName(track.path), title: track.path });
    button.addEventListener("click", () => showSimilar(track.id, track.path));
    list.append(el("li", {}, legendMark(track.genre), button, el("span", { class: "muted", text: ` ${genre}` })));
  }
}

$("library-search").addEventListener("submit", (event) => {
  event.preventDefault();
  searchTracks();
});

async function showSimilar(id, path) {
  const box = $("library-similar");
  box.hidden = false;
  box.replaceChildren(el("h3", { text: `Similar to ${fileName(path)}` }));
  document.querySelectorAll(".map .point.selected").forEach((node) => node.classList.remove("selected"));
  document.querySelectorAll(".map .selected-label").forEach((node) => node.remove());
  const point = document.querySelector(`.map .point[data-id="${id}"]`);
  if (point) {
    point.classList.add("selected");
    const box = point.getBBox();
    const label = document.createElementNS(SVG_NS, "text");
    const right = box.x < MAP_SIZE.width / 2;
    label.setAttribute("x", right ? box.x + box.width + 4 : box.x - 4);
    label.setAttribute("y", box.y + box.height / 2 + 4);
    label.setAttribute("text-anchor", right ? "start" : "end");
    label.setAttribute("class", "selected-label");
    label.textContent = fileName(path);
    point.parentNode.append(label);
  }
  const { status, body } = await getJSON(`/v1/library/tracks/${id}/similar?n=10`);
  if (status !== 200) {
    box.append(el("p", { class: "muted", text: body.error }));
    return;
  }
  const list = el("ol", { id: "library-similar-list" });
  for (const near of body.similar) {
    list.append(el("li", { title: near.path }, legendMark(near.genre),
      el("span", { text: ` ${fileName(near.path)} — ${near.genre || "no prediction"} (distance ${near.distance.toFixed(2)})` })));
  }
  box.append(list);
}

async function loadLearned() {
  const { status, body } = await getJSON("/v1/library/learned");
  const box = $("library-learned");
  if (status !== 200) return; // no learned model
  box.hidden = false;
  const figures = body.figures || {};
  const chosen = (figures.options || {})[figures.chosen] || {};
  const perGenre = chosen.per_genre || {};
  const taxonomy = el("ul", { class: "counts", "aria-label": "learned genres" });
  for (const name of body.classes) {
    const recall = perGenre[name] ? `: ${perGenre[name].files} files, recall ${percent(perGenre[name].recall)}` : "";
    taxonomy.append(el("li", { text: `${body.display[name] || name}${recall}` }));
  }
  const accuracy = chosen.accuracy === undefined ? "" : `File accuracy ${percent(chosen.accuracy)} `
    + `(95% interval ${percent(chosen.ci_low)}–${percent(chosen.ci_high)}; ${figures.protocol}; option ${figures.chosen}).`;
  const rows = (items, text) => {
    const list = el("ol");
    for (const item of items) list.append(el("li", { title: item.file, text: text(item) }));
    if (!items.length) list.append(el("li", { class: "muted", text: "None." }));
    return list;
  };
  box.replaceChildren(
    el("h3", { text: `Learned from your tags (${body.training_files} files)` }), taxonomy,
    el("p", { class: "small", id: "library-accuracy", text: accuracy }),
    el("h4", { text: "Audit: tags the learned model contradicts" }),
    rows(body.audit, (a) => `${fileName(a.file)}: tagged ${a.tag_values.join(", ")}, sounds like ${a.predicted_as}`),
    el("h4", { text: "Suggestions: untagged files worth tagging by hand" }),
    rows(body.suggestions, (s) => fileName(s.file)));
}

loadModel().catch(() => { $("model-line").textContent = "The server cannot be reached."; });
