// The live dashboard: reads /api/metrics once a second and draws the last
// minute as small line charts (SVG polylines: no chart library).

const $ = (id) => document.getElementById(id);
const HISTORY = 60;
const series = new Map();
let previous = null;

function remember(name, value) {
  const values = series.get(name) ?? [];
  values.push(value);
  if (values.length > HISTORY) values.shift();
  series.set(name, values);
  return values;
}

function draw(svg, values) {
  if (!svg || values.length < 2) return;
  const max = Math.max(1, ...values);
  // The newest value at the right edge, a minute back at the left.
  const offset = HISTORY - values.length;
  const points = values
    .map((v, i) => `${((offset + i) * 120) / (HISTORY - 1)},${30 - (v / max) * 28 - 1}`)
    .join(" ");
  svg.innerHTML = `<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${points}"/>`;
}

function rate(now, before, key, seconds) {
  if (!before) return 0;
  return Math.max(0, (now[key] - before[key]) / seconds);
}

async function tick() {
  let metrics;
  try {
    const response = await fetch("/api/metrics", { cache: "no-store" });
    if (!response.ok) throw new Error(`metrics answered ${response.status}`);
    metrics = await response.json();
    $("error").textContent = "";
  } catch (error) {
    $("error").textContent = `No figures: ${error.message}`;
    return;
  }
  const at = Date.now();
  const seconds = previous ? (at - previous.at) / 1000 : 1;
  const inRate = rate(metrics, previous?.metrics, "messages_in", seconds);
  const outRate = rate(metrics, previous?.metrics, "messages_out", seconds);
  $("connections").textContent = metrics.connections;
  $("in-rate").textContent = inRate.toFixed(1);
  $("out-rate").textContent = outRate.toFixed(1);
  $("crises").textContent = metrics.crisis_detected;
  $("channels").textContent = metrics.registry.channels;
  $("presence").textContent = `${metrics.registry.subscriptions} subscriptions, ${metrics.registry.presence_entries} present`;
  $("welcome").textContent = `${(metrics.welcome_p50_us / 1000).toFixed(1)} / ${(metrics.welcome_p99_us / 1000).toFixed(1)}`;
  const assistant = metrics.assistant ?? {};
  const ended = (figures) => Object.values(figures ?? {}).reduce((sum, n) => sum + n, 0);
  const replies = { replies: ended(assistant.replies) };
  const repliesRate = rate(replies, previous?.replies, "replies", seconds);
  $("replies-rate").textContent = repliesRate.toFixed(1);
  $("assistant").textContent =
    `${assistant.replies_active ?? 0} streaming, ${assistant.replies?.completed ?? 0} completed, ` +
    `${assistant.cancels ?? 0} stopped, ${ended(assistant.fallbacks)} fallbacks, ${ended(assistant.model_errors)} model errors`;
  draw($("chart-replies"), remember("replies", repliesRate));
  draw($("chart-connections"), remember("connections", metrics.connections));
  draw($("chart-in"), remember("in", inRate));
  draw($("chart-out"), remember("out", outRate));
  const rows = Object.entries(metrics.actors).map(([name, actor]) => {
    const handled = previous ? (actor.handled - (previous.metrics.actors[name]?.handled ?? 0)) / seconds : 0;
    const backlog = remember(`backlog:${name}`, actor.backlog);
    const row = document.createElement("tr");
    row.innerHTML = `<th scope="row">${name}</th><td>${handled.toFixed(1)}</td><td>${actor.backlog}</td><td>${actor.p99_us} µs</td><td><svg class="spark" viewBox="0 0 120 30" aria-hidden="true"></svg></td>`;
    draw(row.querySelector("svg"), backlog);
    return row;
  });
  $("actors").replaceChildren(...rows);
  $("updated").textContent = `Updated ${new Date(at).toLocaleTimeString()}`;
  previous = { at, metrics, replies };
}

tick();
setInterval(tick, 1000);
