/**
 * The dashboard's one page: HTML, CSS and a small script that polls
 * /api/state and draws the jobs with inline SVG charts. Nothing to build or
 * download; it works offline.
 */
export function dashboardPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice dashboard</title>
<style>
  :root { --bg:#f4f6f8; --card:#fff; --ink:#1d2733; --muted:#66737f; --line:#dde3e8; --ok:#1f8a4c; --warn:#b7791f; --bad:#c53030; --accent:#2563eb; --accent2:#9333ea; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", "Liberation Sans", sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; align-items:baseline; gap:16px; padding:12px 20px; background:#15202b; color:#fff; }
  header h1 { margin:0; font-size:18px; letter-spacing:.5px; }
  header .src { color:#a9b7c4; font-size:13px; }
  header .at { margin-left:auto; color:#a9b7c4; font-size:12px; }
  main { padding:16px 20px; display:grid; gap:16px; }
  .job { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
  .job h2 { margin:0; font-size:17px; display:flex; align-items:center; gap:10px; }
  .badge { font-size:12px; padding:1px 8px; border-radius:10px; background:#e8edf2; color:var(--ink); font-weight:500; }
  .st-running,.st-Running,.st-ready { background:#dcf3e5; color:var(--ok); }
  .st-stalled,.st-starting,.st-restarting,.st-Pending { background:#fdf0d8; color:var(--warn); }
  .st-failed,.st-Degraded,.st-stopped { background:#fde2e2; color:var(--bad); }
  .figures { display:flex; flex-wrap:wrap; gap:22px; margin:10px 0 6px; }
  .fig b { display:block; font-size:20px; font-weight:600; }
  .fig span { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.4px; }
  .alert { background:#fff4e5; border-left:4px solid var(--warn); padding:6px 10px; margin:6px 0; }
  .alert.bad { background:#fdecec; border-left-color:var(--bad); }
  .grid { display:grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap:14px; margin-top:10px; }
  .panel h3 { margin:0 0 6px; font-size:13px; color:var(--muted); text-transform:uppercase; letter-spacing:.4px; }
  table { border-collapse:collapse; width:100%; font-size:13px; }
  th, td { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { color:var(--muted); font-weight:500; }
  td.n, th.n { text-align:right; font-variant-numeric: tabular-nums; }
  .muted { color:var(--muted); }
  svg.chart { width:100%; height:120px; background:#fafbfc; border:1px solid var(--line); border-radius:4px; }
  .empty { color:var(--muted); padding:30px; text-align:center; }
  .err { color:var(--bad); }
</style>
</head>
<body>
<header><h1>Sluice</h1><span class="src" id="source"></span><span class="at" id="at"></span></header>
<main id="jobs"><div class="empty">loading...</div></main>
<script>
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&':'&amp;', '<':'&lt;', '>':'&gt;', '"':'&quot;', "'":'&#39;' })[c]);
const num = (n, d = 0) => (n === undefined || n === null) ? '-' : Number(n).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const ago = (iso) => { if (!iso) return '-'; const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)); return s < 120 ? s + 's ago' : s < 7200 ? Math.round(s / 60) + 'm ago' : Math.round(s / 3600) + 'h ago'; };
const badge = (s) => '<span class="badge st-' + esc(s) + '">' + esc(s) + '</span>';

function chart(points, key, color, label) {
  const w = 600, h = 120, pad = 4;
  const vals = points.map((p) => p[key]).filter((v) => v !== undefined && v !== null);
  if (points.length < 2 || vals.length === 0) return '<svg class="chart" data-chart="' + key + '" viewBox="0 0 ' + w + ' ' + h + '"><text x="10" y="20" fill="#66737f" font-size="13">' + label + ': waiting for data</text></svg>';
  const max = Math.max(1, ...vals);
  const t0 = points[0].t, t1 = points[points.length - 1].t || t0 + 1;
  const xy = points.filter((p) => p[key] !== undefined && p[key] !== null)
    .map((p) => ((pad + (w - 2 * pad) * (p.t - t0) / Math.max(1, t1 - t0)).toFixed(1)) + ',' + ((h - pad - (h - 2 * pad - 16) * p[key] / max).toFixed(1)));
  return '<svg class="chart" data-chart="' + key + '" viewBox="0 0 ' + w + ' ' + h + '" preserveAspectRatio="none">'
    + '<text x="8" y="15" fill="#66737f" font-size="12">' + label + ' (max ' + num(max) + ')</text>'
    + '<polyline fill="none" stroke="' + color + '" stroke-width="2" points="' + xy.join(' ') + '"/></svg>';
}

function rows(items, cells, empty) {
  if (!items || items.length === 0) return '<tr><td class="muted" colspan="9">' + esc(empty) + '</td></tr>';
  return items.map((it) => '<tr>' + cells(it) + '</tr>').join('');
}

function jobCard(j) {
  const ex = j.extras;
  // The job type's words for its results (workers/jobs/<type>/index.ts); a type without them shows events and lag.
  const shown = j.results || { scoreName: '', topHeading: 'highest scores', alerts: false };
  const banners = [];
  for (const s of j.stalls || []) banners.push('<div class="alert" data-testid="stall">worker ' + esc(s.worker) + ' is waiting on ' + esc(s.on) + ' (' + esc(s.reason) + ')</div>');
  for (const c of (j.conditions || []).filter((c) => ({ Ready: 'True', ConfigValid: 'True', Progressing: 'False', Degraded: 'False' })[c.type] !== c.status && !(c.type === 'Progressing' && c.status === 'True')))
    banners.push('<div class="alert bad">' + esc(c.type) + '=' + esc(c.status) + ' ' + esc(c.reason) + ': ' + esc(c.message) + '</div>');
  if (j.lastError) banners.push('<div class="alert' + (j.state === 'failed' ? ' bad' : '') + '" data-testid="last-error">' + esc(j.lastError) + '</div>');
  if (ex && ex.redisError) banners.push('<div class="alert bad">' + esc(ex.redisError) + '</div>');
  const workers = '<table data-testid="workers"><tr><th>worker</th>' + (j.source === 'local' ? '<th>pid</th><th>port</th>' : '') + '<th>state</th><th class="n">restarts</th><th class="n">events/s</th><th class="n">lag</th><th>last error</th></tr>'
    + rows(j.workers, (w) => '<td>' + esc(w.id) + '</td>' + (j.source === 'local' ? '<td>' + esc(w.pid || '-') + '</td><td>' + esc(w.metricsPort) + '</td>' : '')
      + '<td>' + badge(w.state) + '</td><td class="n">' + num(w.restarts) + '</td><td class="n">' + num(w.eventsPerSecond) + '</td><td class="n">' + num(w.lag) + '</td><td class="muted">' + esc(w.lastError || '') + '</td>', 'no workers') + '</table>';
  const parts = (j.workers || []).flatMap((w) => w.partitions || []).sort((a, b) => a.partition - b.partition);
  const partitions = '<table data-testid="partitions"><tr><th class="n">partition</th><th>owner</th><th class="n">lag</th><th class="n">checkpoint age</th></tr>'
    + rows(parts, (p) => '<td class="n">' + p.partition + '</td><td>' + esc(p.owner) + '</td><td class="n">' + num(p.lag) + '</td><td class="n">' + (p.checkpointAgeSeconds === undefined ? '-' : p.checkpointAgeSeconds + 's') + '</td>', 'no partitions assigned') + '</table>';
  const dl = ex ? ex.deadLetters : undefined;
  const dead = '<table data-testid="dead-letters"><tr><th>reason</th><th class="n">count</th></tr>'
    + rows(dl ? dl.reasons : [], (r) => '<td>' + esc(r.reason) + '</td><td class="n">' + num(r.count) + '</td>', dl && dl.note ? dl.note : (ex ? 'no dead letters' : 'shown for local jobs')) + '</table>';
  const alerts = '<table data-testid="alerts"><tr><th>cart</th><th>user</th><th class="n">score</th><th class="n">value</th><th>email</th><th>abandoned</th></tr>'
    + rows(ex ? ex.alerts : [], (a) => '<td>' + esc(a.cartId) + '</td><td>' + esc(a.userId) + '</td><td class="n">' + num(a.score, 3) + '</td><td class="n">' + esc(a.value || '') + '</td><td>' + esc(a.email || '') + '</td><td class="muted">' + esc((a.abandonedAt || '').replace('T', ' ').slice(0, 19)) + '</td>', ex ? 'no alerts yet' : 'shown for local jobs') + '</table>';
  const risky = '<table data-testid="riskiest"><tr><th>user</th><th class="n">' + esc(shown.scoreName) + ' score</th><th></th></tr>'
    + rows(ex ? ex.riskiest : [], (u) => '<td>' + esc(u.userId) + '</td><td class="n">' + num(u.score, 3) + '</td><td class="muted">' + esc(u.detail || '') + '</td>', ex ? 'no scores yet' : 'shown for local jobs') + '</table>'
    + (ex ? '<div class="muted">of ' + num(ex.usersSeen) + ' users read so far</div>' : '');
  const name = (j.namespace ? j.namespace + '/' : '') + j.name;
  return '<section class="job" data-job="' + esc(j.name) + '">'
    + '<h2>' + esc(name) + ' <span class="badge">' + esc(j.type) + '</span> ' + badge(j.state) + '<span class="muted" style="font-size:12px;font-weight:400">' + esc(j.detail || '') + '</span></h2>'
    + '<div class="figures">'
    + '<div class="fig"><b data-testid="ready">' + j.ready + '/' + Math.max(j.workers.length, j.ready) + '</b><span>workers ready</span></div>'
    + '<div class="fig"><b data-testid="events-per-second">' + num(j.eventsPerSecond) + '</b><span>events/s</span></div>'
    + '<div class="fig"><b data-testid="lag">' + num(j.lag) + '</b><span>lag</span></div>'
    + '<div class="fig"><b>' + ago(j.lastCheckpoint) + '</b><span>last checkpoint</span></div>'
    + '<div class="fig"><b data-testid="dlq">' + num(j.deadLetters) + '</b><span>dead letters</span></div>'
    + (shown.alerts ? '<div class="fig"><b>' + num(j.alerts) + '</b><span>alerts</span></div>' : '')
    + '</div>' + banners.join('')
    + '<div class="grid"><div class="panel"><h3>events/s</h3>' + chart(j.history || [], 'eventsPerSecond', '#2563eb', 'events/s') + '</div>'
    + '<div class="panel"><h3>lag</h3>' + chart(j.history || [], 'lag', '#9333ea', 'lag') + '</div></div>'
    + '<div class="grid"><div class="panel"><h3>workers</h3>' + workers + '</div><div class="panel"><h3>partitions</h3>' + partitions + '</div></div>'
    + '<div class="grid"><div class="panel"><h3>' + esc(shown.topHeading) + '</h3>' + risky + '</div>'
    + (shown.alerts ? '<div class="panel"><h3>recent alerts</h3>' + alerts + '</div>' : '')
    + '<div class="panel"><h3>dead-letter reasons</h3>' + dead + '</div></div>'
    + '</section>';
}

async function refresh() {
  try {
    const s = await (await fetch('/api/state', { cache: 'no-store' })).json();
    $('source').textContent = s.source;
    $('at').textContent = 'updated ' + new Date(s.at).toLocaleTimeString();
    const body = s.jobs.length ? s.jobs.map(jobCard).join('') : '<div class="empty">no jobs running: start some with <code>sluice run -f JOB.yaml</code></div>';
    $('jobs').innerHTML = (s.error ? '<div class="alert bad err">' + esc(s.error) + '</div>' : '') + body;
    document.body.dataset.refreshed = String((Number(document.body.dataset.refreshed) || 0) + 1);
    setTimeout(refresh, s.intervalMs || 2000);
  } catch (err) {
    $('at').textContent = 'dashboard unreachable: ' + err;
    setTimeout(refresh, 3000);
  }
}
refresh();
</script>
</body>
</html>
`;
}
