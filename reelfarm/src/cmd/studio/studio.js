// The studio page: a player with a scrubber over frames from the real renderer, layer boxes,
// the contact sheet, the problem list, and preview renders. It follows the template folder by
// polling /api/version and reloading what depends on it.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  version: 0,
  template: null,
  samples: [],
  layers: [],
  playing: false,
  shown: 0,
};

// Query-string overrides for the contact sheet (?langs=hi,ta&times=2,5).
const params = new URLSearchParams(location.search);
if (params.has("langs")) $("langs").value = params.get("langs");
if (params.has("times")) $("times").value = params.get("times");
if (params.get("worst") === "0") $("worst").checked = false;

function fmt(t) {
  return String(Math.round(t * 1000) / 1000);
}

// The error a failed image request answered with (the API answers JSON errors).
async function errorOf(url) {
  try {
    const r = await fetch(url);
    if (r.ok) return null;
    const body = await r.json();
    return body.error || r.statusText;
  } catch (e) {
    return String(e);
  }
}

function frameUrl(lang, sample, t, w) {
  const q = new URLSearchParams({ lang, sample, t: fmt(t), w: String(w), v: String(state.version) });
  return "/api/frame?" + q;
}

async function loadState() {
  const s = await (await fetch("/api/state")).json();
  state.version = s.version;
  state.template = s.template;
  state.samples = s.samples;
  $("folder").textContent = s.dir;
  $("version").textContent = "version " + s.version;
  showProblems(s.problems);
  const d = s.deep;
  $("deep-status").textContent = d.running
    ? "Deep checks running…"
    : d.checked_version
      ? `Deep checks of version ${d.checked_version}: ${d.errors} errors, ${d.warnings} warnings`
      : "";
  const t = s.template;
  $("name").textContent = t ? t.name : "(template does not load)";
  if (!t) return;
  const lang = $("lang");
  const keepLang = lang.value;
  lang.replaceChildren(...t.languages.map((l) => new Option(l, l)));
  lang.value = t.languages.includes(keepLang) ? keepLang : t.default_language;
  fillSamples();
  const sc = $("scrubber");
  sc.max = String(Math.max(0, t.duration - 1 / t.fps));
  sc.step = String(1 / t.fps);
  if (Number(sc.value) > Number(sc.max)) sc.value = "0";
  if (!$("times").value) $("times").value = t.default_times.map(fmt).join(",");
}

function fillSamples() {
  const sel = $("sample");
  const keep = sel.value;
  const lang = $("lang").value;
  sel.replaceChildren(...state.samples.map((r) => new Option(`${r.id} (${r.lang})`, r.id)));
  const own = state.samples.find((r) => r.lang === lang);
  if (state.samples.some((r) => r.id === keep && r.lang === lang)) sel.value = keep;
  else if (own) sel.value = own.id;
  else if (state.samples.some((r) => r.id === keep)) sel.value = keep;
}

function showProblems(problems) {
  const list = $("problems");
  $("problem-count").textContent = problems.length ? `(${problems.length})` : "";
  if (!problems.length) {
    const li = document.createElement("li");
    li.className = "ok";
    li.textContent = "No problems found.";
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(
    ...problems.map((p) => {
      const li = document.createElement("li");
      li.dataset.path = p.path;
      li.dataset.source = p.source;
      li.classList.add(p.severity);
      if (p.layer) li.dataset.layer = p.layer;
      const src = document.createElement("span");
      src.className = "source";
      src.textContent = p.source;
      const where = document.createElement("span");
      where.className = "where";
      const parts = [];
      if (p.layer) parts.push(`layer ${p.layer}`);
      if (p.field) parts.push(`field ${p.field}`);
      where.textContent = parts.length ? parts.join(" · ") : "template";
      const msg = document.createElement("span");
      msg.className = "message";
      msg.textContent = p.message;
      li.append(src, where, msg);
      return li;
    })
  );
}

// Shows the frame at the scrubber's time and its layer boxes.
function showFrame() {
  const t = Number($("scrubber").value);
  $("time").textContent = fmt(t) + " s";
  const lang = $("lang").value;
  const sample = $("sample").value;
  // A broken template still asks: the answer is the error to show.
  if (!lang || !sample) return;
  const url = frameUrl(lang, sample, t, 640);
  const img = $("frame");
  img.dataset.t = fmt(t);
  img.src = url;
  loadLayers(lang, sample, t);
}

$("frame").addEventListener("load", () => {
  const img = $("frame");
  img.dataset.loaded = img.src;
  $("frame-error").textContent = "";
  if (state.playing) setTimeout(step, 0);
});

$("frame").addEventListener("error", async () => {
  const img = $("frame");
  const message = await errorOf(img.src);
  $("frame-error").textContent = message ? "Frame: " + message : "";
  img.dataset.failed = img.src;
  state.playing = false;
  $("play").textContent = "Play";
});

async function loadLayers(lang, sample, t) {
  const q = new URLSearchParams({ lang, sample, t: fmt(t) });
  const r = await fetch("/api/layers?" + q);
  const svg = $("boxes");
  if (!r.ok) {
    state.layers = [];
    svg.replaceChildren();
    return;
  }
  const body = await r.json();
  svg.setAttribute("viewBox", `0 0 ${body.width} ${body.height}`);
  state.layers = body.layers;
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren(
    ...body.layers.map((l) => {
      const poly = document.createElementNS(ns, "polygon");
      poly.setAttribute("points", l.corners.map((c) => c.join(",")).join(" "));
      poly.setAttribute("vector-effect", "non-scaling-stroke");
      poly.dataset.id = l.id;
      return poly;
    })
  );
}

// True when point p is inside the convex quadrilateral `corners`.
function inside(p, corners) {
  let sign = 0;
  for (let i = 0; i < corners.length; i++) {
    const a = corners[i];
    const b = corners[(i + 1) % corners.length];
    const cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
    if (cross !== 0) {
      const s = Math.sign(cross);
      if (sign !== 0 && s !== sign) return false;
      sign = s;
    }
  }
  return true;
}

$("stage").addEventListener("mousemove", (e) => {
  if (!state.template) return;
  const box = $("stage").getBoundingClientRect();
  const p = [
    ((e.clientX - box.left) / box.width) * state.template.width,
    ((e.clientY - box.top) / box.height) * state.template.height,
  ];
  // The top layer is drawn last.
  const hit = [...state.layers].reverse().find((l) => inside(p, l.corners));
  for (const poly of $("boxes").children) poly.classList.toggle("hot", !!hit && poly.dataset.id === hit.id);
  $("hover").textContent = hit
    ? `Layer ${hit.id} (${hit.kind}, opacity ${fmt(hit.opacity)})` + (hit.tokens.length ? ` uses ${hit.tokens.join(", ")}` : "")
    : "No layer here.";
});

// Play-through: the next frame is asked for once the previous one has loaded.
function step() {
  if (!state.playing || !state.template) return;
  const sc = $("scrubber");
  let t = Number(sc.value) + 0.25;
  if (t > Number(sc.max)) t = 0;
  sc.value = String(t);
  showFrame();
}

$("play").addEventListener("click", () => {
  state.playing = !state.playing;
  $("play").textContent = state.playing ? "Pause" : "Play";
  if (state.playing) step();
});

$("scrubber").addEventListener("input", showFrame);
$("lang").addEventListener("change", () => {
  fillSamples();
  showFrame();
});
$("sample").addEventListener("change", showFrame);

async function showGrid() {
  const grid = $("grid");
  $("grid-error").textContent = "";
  const q = new URLSearchParams({
    langs: $("langs").value,
    times: $("times").value,
    worst: $("worst").checked ? "1" : "0",
  });
  const r = await fetch("/api/grid?" + q);
  const body = await r.json();
  if (!r.ok) {
    $("grid-error").textContent = "Contact sheet: " + body.error;
    grid.replaceChildren();
    return;
  }
  const figures = [];
  for (const row of body.rows) {
    body.times.forEach((t, i) => {
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.alt = row.labels[i];
      img.dataset.lang = row.lang;
      img.dataset.key = row.key;
      img.dataset.t = fmt(t);
      img.addEventListener("error", async () => {
        img.dataset.failed = img.src;
        fig.classList.add("failed");
        cap.textContent = row.labels[i] + " — " + ((await errorOf(img.src)) || "failed");
      });
      img.src = frameUrl(row.lang, row.key, t, body.cell_width);
      const cap = document.createElement("figcaption");
      cap.textContent = row.labels[i];
      fig.append(img, cap);
      figures.push(fig);
    });
  }
  grid.replaceChildren(...figures);
}

$("apply").addEventListener("click", showGrid);
$("worst").addEventListener("change", showGrid);

// Preview MP4: started in the background, followed until done.
$("render").addEventListener("click", async () => {
  const q = new URLSearchParams({ lang: $("lang").value, sample: $("sample").value });
  const status = $("render-status");
  const bar = $("render-progress");
  const r = await fetch("/api/preview?" + q, { method: "POST" });
  const body = await r.json();
  if (!r.ok) {
    status.textContent = "Preview: " + body.error;
    return;
  }
  bar.hidden = false;
  status.textContent = "Rendering…";
  const poll = async () => {
    const p = await (await fetch("/api/preview/" + body.id)).json();
    bar.max = Math.max(1, p.total);
    bar.value = p.done;
    if (p.state === "running") {
      status.textContent = p.total ? `Rendering frame ${p.done} of ${p.total}` : "Preparing…";
      setTimeout(poll, 500);
    } else if (p.state === "failed") {
      status.textContent = "Preview failed: " + p.error;
    } else {
      status.innerHTML = "";
      const a = document.createElement("a");
      a.href = p.url;
      a.textContent = `Preview ${p.lang} ${p.sample} (${p.file})`;
      status.append(a);
      const video = $("render-video");
      video.src = p.url;
      video.hidden = false;
    }
  };
  poll();
});

async function reloadAll() {
  await loadState();
  showFrame();
  showGrid();
}

// Follows the folder: everything is reloaded when its version moves.
async function watch() {
  try {
    const v = (await (await fetch("/api/version")).json()).version;
    if (v !== state.version) await reloadAll();
  } catch (e) {
    $("version").textContent = "studio not reachable";
  }
  setTimeout(watch, 500);
}

reloadAll().then(() => setTimeout(watch, 500));
