/**
 * The page's own script and style, as text that page.ts puts inside the page. Plain browser
 * JavaScript (no modules, no build step), run on the data of run-data.ts: a list of runs (live:
 * polled from the server), and for the chosen run its curves (uPlot; loss, each metric with its
 * val_ twin, the learning rate, throughput; against steps or epochs), the per-replica breakdown
 * of a step, the epochs and the checkpoints. `window.ringtrainDashboard` exposes the charts'
 * data for tests. Text from runs is only ever set as textContent, never parsed as HTML.
 */
export const CLIENT_SCRIPT = String.raw`(function () {
  'use strict';
  var boot = JSON.parse(document.getElementById('rt-boot').textContent);
  var live = boot.mode === 'live';
  var PHASES = ['gather', 'copyIn', 'compute', 'copyOut', 'reduceScatter', 'update', 'barrier'];
  var COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
  var state = { runs: [], versions: {}, selected: null, x: 'step', run: null };
  var charts = {};
  var api = { charts: charts, state: state, updates: 0, errors: [] };
  window.ringtrainDashboard = api;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmt(v) {
    if (v === undefined || v === null) return '';
    if (typeof v !== 'number') return String(v);
    if (!isFinite(v)) return String(v);
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
    return String(+v.toPrecision(5));
  }
  function bytes(n) {
    if (n < 1000) return n + ' B';
    var units = ['kB', 'MB', 'GB', 'TB'], i = -1;
    do { n /= 1000; i++; } while (n >= 1000 && i < units.length - 1);
    return n.toFixed(n < 10 ? 2 : 1) + ' ' + units[i];
  }

  // ---- layout
  var header = el('header');
  header.appendChild(el('h1', null, live ? 'ringtrain dashboard' : 'ringtrain report'));
  var status = el('span', 'status-line');
  header.appendChild(status);
  var main = el('main');
  var nav = el('nav', 'runs');
  var detail = el('section', 'detail');
  main.appendChild(nav);
  main.appendChild(detail);
  document.body.appendChild(header);
  document.body.appendChild(main);

  function renderList() {
    nav.replaceChildren();
    nav.appendChild(el('h2', null, 'Runs'));
    if (state.runs.length === 0) nav.appendChild(el('p', 'empty', live ? 'No runs yet (folders with a metrics.jsonl).' : 'No run.'));
    state.runs.forEach(function (r) {
      var b = el('button', 'run' + (r.id === state.selected ? ' selected' : ''));
      b.type = 'button';
      b.dataset.id = r.id;
      b.appendChild(el('span', 'run-name', r.name));
      b.appendChild(el('span', 'badge ' + r.status, r.status));
      b.appendChild(el('span', 'run-id', r.id));
      b.addEventListener('click', function () { select(r.id); });
      nav.appendChild(b);
    });
  }

  function select(id) {
    if (state.selected === id) return;
    state.selected = id;
    state.run = null;
    if (live) { try { history.replaceState(null, '', '#' + encodeURIComponent(id)); } catch (e) { /* file: URLs */ } }
    destroyCharts();
    detail.replaceChildren();
    renderList();
    if (live) refresh();
    else renderRun(state.runs.find(function (r) { return r.id === id; }));
  }

  // ---- curves
  function destroyCharts() {
    Object.keys(charts).forEach(function (k) { charts[k].u.destroy(); delete charts[k]; });
  }

  /** Chart groups: loss and each metric with its val_ twin, the learning rate, throughput. */
  function groupsOf(run) {
    var keys = {};
    run.progress.forEach(function (p) { Object.keys(p.values).forEach(function (k) { keys[k] = true; }); });
    run.epochs.forEach(function (e) { Object.keys(e.values).forEach(function (k) { keys[k] = true; }); });
    var base = Object.keys(keys).filter(function (k) { return k.indexOf('val_') !== 0 && k !== 'lr' && k !== 'samplesPerSec'; });
    base.sort(function (a, b) { return a === 'loss' ? -1 : b === 'loss' ? 1 : a < b ? -1 : 1; });
    Object.keys(keys).forEach(function (k) { if (k.indexOf('val_') === 0 && base.indexOf(k.slice(4)) < 0) base.push(k.slice(4)); });
    var groups = base.map(function (k) {
      var series = [];
      if (keys[k]) series.push(k);
      if (keys['val_' + k]) series.push('val_' + k);
      return { id: k, title: k, series: series };
    });
    if (keys.lr) groups.push({ id: 'lr', title: 'learning rate', series: ['lr'] });
    groups.push({ id: 'samplesPerSec', title: 'throughput (samples/s)', series: ['samplesPerSec'] });
    return groups;
  }

  /** uPlot's aligned data: x (global step, or epochs as step / steps per epoch) and a column per series, null where it has no value. */
  function dataOf(run, group) {
    var byStep = {};
    function put(step, key, v) {
      if (typeof v !== 'number') return;
      (byStep[step] = byStep[step] || {})[key] = v;
    }
    group.series.forEach(function (key) {
      if (key.indexOf('val_') !== 0) run.progress.forEach(function (p) { put(p.step, key, p.values[key]); });
      run.epochs.forEach(function (e) { put(e.step, key, key === 'samplesPerSec' ? e.samplesPerSec : e.values[key]); });
    });
    var steps = Object.keys(byStep).map(Number).sort(function (a, b) { return a - b; });
    var per = run.stepsPerEpoch || 1;
    var data = [steps.map(function (s) { return state.x === 'epoch' ? s / per : s; })];
    group.series.forEach(function (key) {
      data.push(steps.map(function (s) { var v = byStep[s][key]; return v === undefined ? null : v; }));
    });
    return data;
  }

  function chartWidth(box) { return Math.max(280, Math.floor(box.clientWidth || 420)); }

  function renderCharts(run, box) {
    var groups = groupsOf(run);
    var wanted = {};
    groups.forEach(function (g, gi) {
      wanted[g.id] = true;
      var data = dataOf(run, g);
      var signature = g.series.join(',') + '|' + state.x;
      var c = charts[g.id];
      if (c && c.signature === signature) {
        c.u.setData(data);
        return;
      }
      if (c) { c.u.destroy(); c.box.remove(); }
      var holder = el('div', 'chart');
      holder.dataset.chart = g.id;
      box.appendChild(holder);
      var opts = {
        title: g.title,
        width: chartWidth(holder),
        height: 220,
        scales: { x: { time: false } },
        axes: [{ label: state.x === 'epoch' ? 'epoch' : 'step' }, { size: 60 }],
        series: [{ label: state.x }].concat(g.series.map(function (key, i) {
          var val = key.indexOf('val_') === 0;
          return {
            label: key,
            stroke: COLORS[(gi + (val ? 1 : 0) * 3 + i) % COLORS.length],
            width: 1.5,
            spanGaps: true,
            dash: val ? [6, 4] : undefined,
            points: { show: val || data[0].length < 40, size: 5 },
            value: function (u, v) { return v === null || v === undefined ? '--' : fmt(v); },
          };
        })),
      };
      charts[g.id] = { u: new uPlot(opts, data, holder), signature: signature, box: holder, series: g.series.slice() };
    });
    Object.keys(charts).forEach(function (k) {
      if (!wanted[k]) { charts[k].u.destroy(); charts[k].box.remove(); delete charts[k]; }
    });
  }

  window.addEventListener('resize', function () {
    Object.keys(charts).forEach(function (k) { charts[k].u.setSize({ width: chartWidth(charts[k].box), height: 220 }); });
  });

  // ---- tables
  function table(headings, rows, cls) {
    var t = el('table', cls);
    var tr = el('tr');
    headings.forEach(function (h) { tr.appendChild(el('th', null, h)); });
    var thead = el('thead');
    thead.appendChild(tr);
    t.appendChild(thead);
    var tbody = el('tbody');
    rows.forEach(function (row) {
      var r = el('tr');
      row.forEach(function (cell) {
        if (cell instanceof Node) { var td = el('td'); td.appendChild(cell); r.appendChild(td); }
        else r.appendChild(el('td', typeof cell === 'number' ? 'num' : null, typeof cell === 'number' ? fmt(cell) : cell));
      });
      tbody.appendChild(r);
    });
    t.appendChild(tbody);
    return t;
  }

  function valueKeys(rows) {
    var keys = {};
    rows.forEach(function (r) { Object.keys(r.values).forEach(function (k) { keys[k] = true; }); });
    return Object.keys(keys).sort(function (a, b) {
      var va = a.indexOf('val_') === 0, vb = b.indexOf('val_') === 0;
      if (va !== vb) return va ? 1 : -1;
      return a === 'loss' || a === 'val_loss' ? -1 : b === 'loss' || b === 'val_loss' ? 1 : a < b ? -1 : 1;
    });
  }

  /** Milliseconds per step of each phase, for each replica of the last epoch that reports them. */
  function renderBreakdown(run, box) {
    box.replaceChildren(el('h3', null, 'A step, per replica'));
    var last = null;
    for (var i = run.epochs.length - 1; i >= 0 && !last; i--) if (run.epochs[i].replicaPhaseTimes || run.epochs[i].phaseTimes) last = run.epochs[i];
    if (!last) { box.appendChild(el('p', 'empty', 'No epoch finished yet.')); return; }
    var replicas = last.replicaPhaseTimes && last.replicaPhaseTimes.length > 0 ? last.replicaPhaseTimes : [last.phaseTimes];
    var label = last.replicaPhaseTimes && last.replicaPhaseTimes.length > 0 ? function (r) { return 'replica ' + r; } : function () { return 'mean of replicas'; };
    var perStep = replicas.map(function (t) { return PHASES.map(function (p) { return ((t && t[p]) || 0) * 1000 / last.steps; }); });
    var most = Math.max.apply(null, perStep.map(function (ms) { return ms.reduce(function (a, b) { return a + b; }, 0); }).concat([1e-9]));
    box.appendChild(el('p', 'note', 'Epoch ' + last.epoch + ': milliseconds per step in each phase (' + last.steps + ' steps, ' + fmt(last.samplesPerSec) + ' samples/s).'));
    var legend = el('div', 'legend');
    PHASES.forEach(function (p, i) {
      var k = el('span', 'key');
      var sw = el('span', 'swatch');
      sw.style.background = COLORS[i];
      k.appendChild(sw);
      k.appendChild(document.createTextNode(p));
      legend.appendChild(k);
    });
    box.appendChild(legend);
    var rows = perStep.map(function (ms, r) {
      var total = ms.reduce(function (a, b) { return a + b; }, 0);
      var bar = el('div', 'bar');
      ms.forEach(function (v, i) {
        var seg = el('span', 'seg');
        seg.style.width = (100 * v / most) + '%';
        seg.style.background = COLORS[i];
        seg.title = PHASES[i] + ': ' + fmt(v) + ' ms';
        bar.appendChild(seg);
      });
      return [label(r)].concat(ms, [total, bar]);
    });
    box.appendChild(table(['', ].concat(PHASES, ['total ms', '']), rows, 'breakdown'));
  }

  function renderEpochs(run, box) {
    box.replaceChildren(el('h3', null, 'Epochs'));
    if (run.epochs.length === 0) { box.appendChild(el('p', 'empty', 'No epoch finished yet.')); return; }
    var keys = valueKeys(run.epochs);
    box.appendChild(table(['epoch', 'step'].concat(keys, ['samples/s', 'seconds']), run.epochs.map(function (e) {
      return [e.epoch, e.step].concat(keys.map(function (k) { return e.values[k] === undefined ? '' : e.values[k]; }), [Math.round(e.samplesPerSec), e.seconds]);
    }), 'epochs'));
  }

  function renderCheckpoints(run, box) {
    box.replaceChildren(el('h3', null, 'Checkpoints'));
    if (run.checkpoints.length === 0) { box.appendChild(el('p', 'empty', 'No checkpoints.')); return; }
    var keys = valueKeys(run.checkpoints);
    box.appendChild(table(['file', 'epoch', 'step', 'written', 'size'].concat(keys, ['']), run.checkpoints.map(function (c) {
      return [c.file, c.epoch, c.step, c.createdAt ? c.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '', bytes(c.bytes)]
        .concat(keys.map(function (k) { return c.values[k] === undefined ? '' : c.values[k]; }), [c.best ? 'best' : c.error ? 'unreadable: ' + c.error : '']);
    }), 'checkpoints'));
  }

  function facts(run) {
    var done = run.epochs.length ? run.epochs[run.epochs.length - 1].epoch : 0;
    var parts = ['epoch ' + done + (run.epochsPlanned ? ' of ' + run.epochsPlanned : '')];
    if (run.stepsPerEpoch) parts.push(run.stepsPerEpoch + ' steps/epoch');
    if (run.replicas) parts.push(run.replicas + ' replica(s)' + (run.processes > 1 ? ' in ' + run.processes + ' processes' : ''));
    if (run.backend) parts.push(run.backend);
    if (run.parameters) parts.push(run.parameters.toLocaleString('en-US') + ' parameters');
    if (run.startedAt) parts.push('started ' + run.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'));
    var s = run.summary;
    if (s && typeof s.wallSeconds === 'number') parts.push('trained in ' + fmt(s.wallSeconds) + ' s at ' + Math.round(s.samplesPerSec) + ' samples/s');
    if (s && s.evaluation) parts.push(s.evaluation.on + ' evaluation: loss ' + fmt(s.evaluation.loss));
    return parts.join(' · ');
  }

  function renderRun(run) {
    if (!run) return;
    var firstTime = state.run === null || detail.dataset.id !== run.id;
    state.run = run;
    if (firstTime) {
      detail.replaceChildren();
      detail.dataset.id = run.id;
      var title = el('div', 'title');
      title.appendChild(el('h2', 'run-title'));
      title.appendChild(el('span', 'badge'));
      detail.appendChild(title);
      detail.appendChild(el('p', 'facts'));
      var controls = el('div', 'controls');
      controls.appendChild(el('span', null, 'x axis: '));
      ['step', 'epoch'].forEach(function (x) {
        var b = el('button', 'xaxis' + (state.x === x ? ' selected' : ''), x + 's');
        b.type = 'button';
        b.dataset.x = x;
        b.addEventListener('click', function () {
          state.x = x;
          controls.querySelectorAll('button').forEach(function (o) { o.classList.toggle('selected', o.dataset.x === x); });
          destroyCharts();
          detail.querySelector('.charts').replaceChildren();
          renderCharts(state.run, detail.querySelector('.charts'));
        });
        controls.appendChild(b);
      });
      detail.appendChild(controls);
      detail.appendChild(el('div', 'charts'));
      detail.appendChild(el('div', 'section breakdown-box'));
      detail.appendChild(el('div', 'section epochs-box'));
      detail.appendChild(el('div', 'section checkpoints-box'));
      detail.appendChild(el('ul', 'notes'));
    }
    detail.querySelector('.run-title').textContent = run.name + (run.id !== '.' && run.id !== run.name ? ' (' + run.id + ')' : '');
    var badge = detail.querySelector('.title .badge');
    badge.textContent = run.status;
    badge.className = 'badge ' + run.status;
    detail.querySelector('.facts').textContent = facts(run);
    renderCharts(run, detail.querySelector('.charts'));
    renderBreakdown(run, detail.querySelector('.breakdown-box'));
    renderEpochs(run, detail.querySelector('.epochs-box'));
    renderCheckpoints(run, detail.querySelector('.checkpoints-box'));
    var notes = detail.querySelector('.notes');
    notes.replaceChildren();
    run.notes.concat(run.recoveries.map(function (r) { return 'recovery ' + r.attempt + ' of ' + r.of + ': ' + r.error; })).forEach(function (n) { notes.appendChild(el('li', null, n)); });
    api.updates++;
  }

  // ---- live: poll the list, fetch the chosen run when it changed
  var fetching = false;
  function getJson(url) {
    return fetch(url, { cache: 'no-store' }).then(function (r) {
      if (!r.ok) return r.text().then(function (t) { throw new Error(url + ': ' + r.status + ' ' + t); });
      return r.json();
    });
  }
  function refresh() {
    if (fetching) return;
    fetching = true;
    getJson('api/runs').then(function (list) {
      state.runs = list;
      var hash = decodeURIComponent(location.hash.slice(1));
      if (!state.selected || !list.some(function (r) { return r.id === state.selected; })) {
        var pick = list.find(function (r) { return r.id === hash; }) || list.slice().sort(function (a, b) { return b.updatedAt - a.updatedAt; })[0];
        state.selected = pick ? pick.id : null;
      }
      renderList();
      var entry = list.find(function (r) { return r.id === state.selected; });
      if (!entry || (state.versions[entry.id] === entry.version && state.run && state.run.id === entry.id)) return;
      return getJson('api/run?id=' + encodeURIComponent(entry.id)).then(function (run) {
        state.versions[entry.id] = entry.version;
        if (run.id === state.selected) renderRun(run);
      });
    }).then(function () {
      status.textContent = 'updated ' + new Date().toLocaleTimeString();
      status.classList.remove('error');
    }, function (e) {
      api.errors.push(String(e));
      status.textContent = 'cannot reach the dashboard server (' + e.message + '); retrying';
      status.classList.add('error');
    }).then(function () { fetching = false; });
  }

  if (live) {
    refresh();
    setInterval(refresh, boot.pollMs);
  } else {
    state.runs = boot.runs;
    status.textContent = 'written ' + boot.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    if (boot.runs.length < 2) nav.remove();
    if (boot.runs.length > 0) { state.selected = boot.runs[0].id; renderList(); renderRun(boot.runs[0]); }
  }
})();
`;

export const PAGE_STYLE = String.raw`
:root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #fafafa; }
body { margin: 0; }
header { display: flex; align-items: baseline; gap: 1em; padding: 0.6em 1em; background: #263238; color: #eceff1; }
header h1 { font-size: 1.1em; margin: 0; }
.status-line { font-size: 0.85em; opacity: 0.8; }
.status-line.error { color: #ffab91; opacity: 1; }
main { display: flex; align-items: flex-start; }
nav.runs { width: 15em; flex: none; padding: 0.5em; border-right: 1px solid #ddd; min-height: 90vh; }
nav.runs h2 { font-size: 0.95em; margin: 0.3em 0.2em 0.6em; }
button.run { display: grid; grid-template-columns: 1fr auto; width: 100%; text-align: left; margin: 0 0 0.4em; padding: 0.4em 0.5em; border: 1px solid #ddd; border-radius: 4px; background: #fff; cursor: pointer; font: inherit; }
button.run.selected { border-color: #1f77b4; background: #e3f2fd; }
.run-name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; }
.run-id { grid-column: 1 / 3; font-size: 0.8em; color: #666; overflow: hidden; text-overflow: ellipsis; }
.badge { font-size: 0.75em; padding: 0.1em 0.5em; border-radius: 1em; background: #eee; }
.badge.running { background: #c8e6c9; }
.badge.finished { background: #bbdefb; }
.badge.stopped, .badge.interrupted { background: #ffe0b2; }
section.detail { flex: 1; padding: 0.5em 1em; min-width: 0; }
.title { display: flex; align-items: center; gap: 0.8em; }
.title h2 { margin: 0.3em 0; font-size: 1.2em; }
.facts { color: #444; font-size: 0.9em; margin: 0.2em 0 0.6em; }
.controls button { font: inherit; margin-right: 0.3em; border: 1px solid #bbb; background: #fff; border-radius: 3px; cursor: pointer; }
.controls button.selected { background: #263238; color: #fff; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 0.8em; margin-top: 0.6em; }
.chart { background: #fff; border: 1px solid #e0e0e0; border-radius: 4px; padding: 0.3em; min-width: 0; }
.section h3 { font-size: 1em; margin: 1.2em 0 0.4em; }
table { border-collapse: collapse; font-size: 0.85em; background: #fff; }
th, td { border: 1px solid #e0e0e0; padding: 0.2em 0.5em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: flex; width: 16em; height: 0.9em; background: #f0f0f0; }
.seg { display: block; height: 100%; }
.legend { display: flex; flex-wrap: wrap; gap: 0.8em; font-size: 0.8em; margin: 0.3em 0; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em; vertical-align: middle; }
.note, .empty { color: #555; font-size: 0.85em; }
.notes { color: #8d6e63; font-size: 0.85em; }
`;
